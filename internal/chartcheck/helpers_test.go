package chartcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"
)

// kubeVersion is the --kube-version most renders pass. A helm built with
// "go install" assumes Kubernetes 1.20 otherwise (its release builds set a
// recent default with ldflags), where gateway.nativeSidecar auto makes a
// classic sidecar; the tests of both modes name their version.
const kubeVersion = "1.33.0"

// helmDefaultKube, as the kube argument of renderChart, passes no
// --kube-version: helm assumes the version it was built with.
const helmDefaultKube = "helm's default"

// helmInstall tells how to get the helm the tests expect.
const helmInstall = "go install helm.sh/helm/v3/cmd/helm@v3.22.0"

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// moduleRoot returns the directory of go.mod, from "go env GOMOD".
func moduleRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			rootErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			rootErr = fmt.Errorf("go env GOMOD: not inside a module")
			return
		}
		rootDir = filepath.Dir(gomod)
	})
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return rootDir
}

func chartDir(t *testing.T) string {
	return filepath.Join(moduleRoot(t), "charts", "obo-gateway")
}

var (
	helmOnce sync.Once
	helmBin  string
	helmErr  error
)

// helm returns the path of a helm v3 binary: on PATH, or in
// $(go env GOPATH)/bin. Without one, the test is skipped, or fails when the
// environment variable CI is set.
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		bin, err := exec.LookPath("helm")
		if err != nil {
			out, gerr := exec.Command("go", "env", "GOPATH").Output()
			if gerr == nil {
				for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
					candidate := filepath.Join(dir, "bin", "helm")
					if _, serr := os.Stat(candidate); serr == nil {
						bin, err = candidate, nil
						break
					}
				}
			}
		}
		if err != nil {
			helmErr = fmt.Errorf("helm is not installed (not on PATH nor in $(go env GOPATH)/bin); install it with: %s", helmInstall)
			return
		}
		out, err := exec.Command(bin, "version", "--template", "{{.Version}}").Output()
		if err != nil {
			helmErr = fmt.Errorf("%s version: %w", bin, err)
			return
		}
		if v := strings.TrimSpace(string(out)); !strings.HasPrefix(v, "v3.") {
			helmErr = fmt.Errorf("%s is helm %s; these tests need helm v3 (%s)", bin, v, helmInstall)
			return
		}
		helmBin = bin
	})
	if helmErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(helmErr)
		}
		t.Skip(helmErr)
	}
	return helmBin
}

// renderChart runs helm template on chart for Kubernetes kube (no
// --kube-version for helmDefaultKube) with the values files (relative to
// the chart unless absolute) and --set values, and returns the manifests, or
// the error and helm's output.
func renderChart(t *testing.T, chart, kube string, valuesFiles []string, sets []string) (manifests, error) {
	t.Helper()
	args := []string{"template", "release", chart, "--namespace", "apps"}
	if kube != helmDefaultKube {
		args = append(args, "--kube-version", kube)
	}
	for _, f := range valuesFiles {
		if !filepath.IsAbs(f) {
			f = filepath.Join(chart, f)
		}
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helm(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return splitManifests(t, stdout.Bytes()), nil
}

// render is renderChart of this repository's chart for kubeVersion,
// failing the test when helm fails.
func render(t *testing.T, valuesFiles []string, sets ...string) manifests {
	t.Helper()
	return renderAt(t, kubeVersion, valuesFiles, sets...)
}

// renderAt is render for Kubernetes kube.
func renderAt(t *testing.T, kube string, valuesFiles []string, sets ...string) manifests {
	t.Helper()
	m, err := renderChart(t, chartDir(t), kube, valuesFiles, sets)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// manifest is one rendered Kubernetes object.
type manifest struct {
	Source     string // the template it came from (helm's "# Source:" comment)
	APIVersion string
	Kind       string
	Name       string
	JSON       []byte
}

type manifests []manifest

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

func splitManifests(t *testing.T, out []byte) manifests {
	t.Helper()
	var ms manifests
	for _, doc := range docSeparator.Split(string(out), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var source string
		if m := regexp.MustCompile(`(?m)^# Source: (.*)$`).FindStringSubmatch(doc); m != nil {
			source = m[1]
		}
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: invalid YAML: %v\n%s", source, err, doc)
		}
		if string(js) == "null" {
			continue // only comments
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(js, &head); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
			t.Fatalf("%s: a manifest without apiVersion, kind or metadata.name:\n%s", source, doc)
		}
		ms = append(ms, manifest{Source: source, APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, JSON: js})
	}
	return ms
}

// ofKind returns the manifests of one kind.
func (ms manifests) ofKind(kind string) manifests {
	var out manifests
	for _, m := range ms {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// decodeStrict decodes a manifest into v, rejecting unknown fields.
func decodeStrict(t *testing.T, m manifest, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(m.JSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s (%s %s): %v", m.Source, m.Kind, m.Name, err)
	}
}

// one decodes the single manifest of a kind into v.
func (ms manifests) one(t *testing.T, kind string, v any) {
	t.Helper()
	of := ms.ofKind(kind)
	if len(of) != 1 {
		t.Fatalf("rendered %d %s manifests, want 1", len(of), kind)
	}
	decodeStrict(t, of[0], v)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// gatewayBinary builds ./cmd/obo-gateway once, into a temporary directory.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	root := moduleRoot(t)
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chartcheck-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "obo-gateway")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/obo-gateway")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/obo-gateway: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// runCheck runs "obo-gateway check" on the configuration text and returns
// its exit code and output.
func runCheck(t *testing.T, config string) (code int, output string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gatewayBinary(t), "check", "--config", file)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
