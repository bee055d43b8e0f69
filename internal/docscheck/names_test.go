package docscheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	testName = regexp.MustCompile(`\b(?:Test|Fuzz|Benchmark)[A-Z][A-Za-z0-9_]*`)
	goPath   = regexp.MustCompile("`([a-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+\\.go)`")
	testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)\(`)
)

// testFunctions returns the names of the test, fuzz and benchmark
// functions of the repository.
func testFunctions(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := make(map[string]bool)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range testFunc.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNamedTestsExist checks the evidence the documents cite, above all the
// promise → test table of docs/security.md: every test function they name
// is defined, and every Go file they name exists.
func TestNamedTestsExist(t *testing.T) {
	root := repoRoot(t)
	funcs := testFunctions(t, root)
	if !funcs["TestNamedTestsExist"] {
		t.Fatal("testFunctions does not find this test")
	}
	for _, doc := range checkedDocuments(t, root) {
		for i, l := range strings.Split(readDoc(t, root, doc), "\n") {
			for _, name := range testName.FindAllString(l, -1) {
				if !funcs[name] {
					t.Errorf("%s:%d: names %s, which no _test.go file defines", doc, i+1, name)
				}
			}
			for _, m := range goPath.FindAllStringSubmatch(l, -1) {
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(m[1]))); err != nil {
					t.Errorf("%s:%d: names %s, which does not exist", doc, i+1, m[1])
				}
			}
		}
	}
}
