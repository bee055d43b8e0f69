package chartcheck

import (
	"reflect"
	"testing"
)

// TestReloadKeepsThePodTemplate: with gateway.reload (the default), a
// change of the gateway configuration changes the ConfigMap and nothing in
// the pod template, so the running pods are not rolled and pick the change
// up through the mounted ConfigMap; with gateway.reload false it rolls
// them.
func TestReloadKeepsThePodTemplate(t *testing.T) {
	helm(t)
	values := []string{"examples/secret.yaml"}
	for _, tc := range []struct {
		reload string
		rolls  bool
	}{{"true", false}, {"false", true}} {
		before := decodeWorkload(t, render(t, values, "gateway.reload="+tc.reload))
		after := decodeWorkload(t, render(t, values, "gateway.reload="+tc.reload,
			"gateway.config.routes[0].path_prefix=/msgraph", "gateway.config.log.level=debug"))
		if before.configText == after.configText {
			t.Fatalf("gateway.reload=%s: the configuration change did not reach the ConfigMap", tc.reload)
		}
		if rolls := !reflect.DeepEqual(before.deploy.Spec.Template, after.deploy.Spec.Template); rolls != tc.rolls {
			t.Errorf("gateway.reload=%s: a configuration change rolls the pods: %v, want %v", tc.reload, rolls, tc.rolls)
		}
	}
}
