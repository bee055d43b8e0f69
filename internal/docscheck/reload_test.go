package docscheck

import (
	"reflect"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/app"
	"github.com/obo-gateway/obo-gateway/internal/config"
)

// TestReloadClassifiesEveryKey: every configuration key is either applied
// by a reload or needs a restart (app.LiveKeys, app.RestartKeys), never
// both and never neither, and docs/reload.md names every restart key.
func TestReloadClassifiesEveryKey(t *testing.T) {
	live, restart := app.LiveKeys(), app.RestartKeys()
	under := func(key string, roots []string) (n int) {
		for _, r := range roots {
			if key == r || strings.HasPrefix(key, r+".") || strings.HasPrefix(key, r+"[]") {
				n++
			}
		}
		return n
	}
	for _, key := range configKeys(reflect.TypeFor[config.Config](), "") {
		l, r := under(key, live), under(key, restart)
		if l+r != 1 {
			t.Errorf("configuration key %s is under %d live and %d restart keys; classify it once in internal/app/reload.go", key, l, r)
		}
	}
	doc := readDoc(t, repoRoot(t), "docs/reload.md")
	for _, key := range restart {
		if !strings.Contains(doc, "`"+key+"`") {
			t.Errorf("docs/reload.md does not name the restart key `%s`", key)
		}
	}
}
