package chartcheck

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"
)

// knownLicenses maps the SHA-256 of a license's standard text, as
// published, to its SPDX identifier.
var knownLicenses = map[string]string{
	// https://www.apache.org/licenses/LICENSE-2.0.txt
	"cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30": "Apache-2.0",
}

// licenseSPDX returns the SPDX identifier of the repository's LICENSE, which
// must be a license's standard text, unchanged.
func licenseSPDX(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	id, ok := knownLicenses[hex.EncodeToString(sum[:])]
	if !ok {
		t.Fatalf("LICENSE (SHA-256 %x) is not the standard text of a known license", sum)
	}
	return id
}

// TestLicenseAgrees: the image's licenses label and the chart's license
// annotation name the license of LICENSE.
func TestLicenseAgrees(t *testing.T) {
	spdx := licenseSPDX(t)
	if spdx != "Apache-2.0" {
		t.Errorf("LICENSE is %s, want Apache-2.0", spdx)
	}

	stages := parseDockerfile(t, filepath.Join(moduleRoot(t), "Dockerfile"))
	final := stages[len(stages)-1]
	var label string
	for _, in := range final.all("LABEL") {
		if m := regexp.MustCompile(`org\.opencontainers\.image\.licenses="([^"]*)"`).FindStringSubmatch(in.args); m != nil {
			label = m[1]
		}
	}
	if label != spdx {
		t.Errorf("Dockerfile: LABEL org.opencontainers.image.licenses=%q, LICENSE is %s", label, spdx)
	}

	data, err := os.ReadFile(filepath.Join(chartDir(t), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatalf("Chart.yaml: %v", err)
	}
	if got := chart.Annotations["artifacthub.io/license"]; got != spdx {
		t.Errorf("Chart.yaml annotation artifacthub.io/license = %q, LICENSE is %s", got, spdx)
	}
}
