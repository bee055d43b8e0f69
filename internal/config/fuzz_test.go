package config

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse: whatever the file holds, Parse does not panic; it either
// returns a configuration that passes Validate, or Problems, each of which
// names its key (or its line, or is about the file as a whole); and it
// answers the same way twice.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		minimal,
		minimal + "    forward_cookies: true\n",
		strings.Replace(minimal, "  secret: ${OBO_CLIENT_SECRET}\n", "  managed_identity: {client_id: ca11ab1e-0000-4000-8000-0000000000ca}\n", 1),
		strings.Replace(minimal, "  audiences: [api://api-a]\n", "  audiences: [api://api-a]\n  strip_headers: [X-User, \"bad name\"]\n", 1),
		"listen: 127.0.0.1:8080\nroutes:\n  - name: a\n bad: 1\n",
		"base: &b {name: x, path_prefix: /x}\nroutes: [{<<: *b, upstream: ${UP}}, *b]\n",
		"cache: {max_bytes: 1.5GiB}\nshutdown_timeout: -1s\n",
		"---\n~\n---\nlisten: x\n",
		"[1, 2]",
		"authority: {url: http://example.com/t/v2.0, protocol: rfc8693}\nclient: {id: a, secret: $$x}\n",
		"? [a]\n: b\n",
		"",
	} {
		f.Add([]byte(s))
	}
	env := func(name string) (string, bool) {
		switch name {
		case "OBO_CLIENT_SECRET", "UP":
			return "https://up.example/api", true
		case "EMPTY":
			return "", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if readsFiles(data) {
			// secret_file, assertion_file and certificate files are read
			// by Validate; fuzzing must not open /dev/zero or a fifo.
			t.Skip()
		}
		c, err := Parse(data, "fuzz.yaml", env)
		again, err2 := Parse(data, "fuzz.yaml", env)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || (c == nil) != (again == nil) {
			t.Fatalf("Parse is not deterministic: %v / %v", err, err2)
		}
		if err == nil {
			if c == nil {
				t.Fatal("Parse returned neither a configuration nor an error")
			}
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a configuration that Validate refuses: %v", verr)
			}
			return
		}
		if c != nil {
			t.Fatal("Parse returned a configuration with an error")
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("Parse error is %T (%v), want non-empty Problems", err, err)
		}
		for _, p := range ps {
			if p.File != "fuzz.yaml" || p.Message == "" {
				t.Fatalf("problem without file or message: %+v", p)
			}
			wholeFile := strings.HasPrefix(p.Message, "invalid YAML") || p.Message == "the configuration file is empty"
			if p.Key == "" && p.Line == 0 && !wholeFile {
				t.Fatalf("problem names neither a key nor a line: %+v", p)
			}
		}
	})
}

// readsFiles reports whether data may name a file that Parse reads: any
// key, value or anchor containing "file", after YAML unquoting.
func readsFiles(data []byte) bool {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return strings.Contains(strings.ToLower(string(data)), "file")
	}
	seen := make(map[*yaml.Node]bool)
	var walk func(*yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		if n == nil || seen[n] { // aliases may form cycles
			return false
		}
		seen[n] = true
		if strings.Contains(strings.ToLower(n.Value+n.Anchor), "file") {
			return true
		}
		for _, c := range n.Content {
			if walk(c) {
				return true
			}
		}
		return walk(n.Alias)
	}
	return walk(&root)
}
