package chartcheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// knownMetrics returns the metric names defined in package metrics: every
// Name: "..." of its collectors, with the obo_gateway_ namespace.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join(moduleRoot(t), "metrics")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	re := regexp.MustCompile(`Name:\s*"([a-z0-9_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(data, -1) {
			known["obo_gateway_"+string(m[1])] = true
		}
	}
	if !known["obo_gateway_requests_total"] {
		t.Fatalf("found no metric names in %s", dir)
	}
	return known
}

var metricName = regexp.MustCompile(`\bobo_gateway_[a-z0-9_]+`)

// usedMetrics returns the obo_gateway_ metrics of PromQL expressions, with
// the histogram series suffixes removed.
func usedMetrics(exprs []string) map[string]bool {
	used := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if strings.HasSuffix(m, "_seconds"+suffix) {
					m = strings.TrimSuffix(m, suffix)
				}
			}
			used[m] = true
		}
	}
	return used
}

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "dashboards", "obo-gateway.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			GridPos struct {
				H, W, X, Y int
			} `json:"gridPos"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("dashboard without uid or title")
	}
	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Contains(vars, "datasource") {
		t.Errorf("dashboard variables %v lack datasource", vars)
	}

	ids := map[int]bool{}
	var exprs []string
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %q and %d queries, want ${datasource} and at least one", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, q := range p.Targets {
			if strings.Count(q.Expr, "(") != strings.Count(q.Expr, ")") || strings.Count(q.Expr, "{") != strings.Count(q.Expr, "}") {
				t.Errorf("panel %q: unbalanced query %s", p.Title, q.Expr)
			}
			for _, v := range regexp.MustCompile(`\$([a-z_]+)`).FindAllStringSubmatch(q.Expr, -1) {
				if v[1] != "__rate_interval" && !slices.Contains(vars, v[1]) {
					t.Errorf("panel %q uses undefined variable $%s", p.Title, v[1])
				}
			}
			exprs = append(exprs, q.Expr)
		}
	}

	known := knownMetrics(t)
	used := usedMetrics(exprs)
	for m := range used {
		if !known[m] {
			t.Errorf("the dashboard queries %s, which the gateway does not export", m)
		}
	}
	// What the dashboard must show.
	for _, m := range []string{
		"obo_gateway_requests_total", "obo_gateway_request_duration_seconds", "obo_gateway_requests_in_flight",
		"obo_gateway_inbound_rejections_total", "obo_gateway_exchanges_total", "obo_gateway_exchange_duration_seconds",
		"obo_gateway_cache_lookups_total", "obo_gateway_cache_entries", "obo_gateway_cache_bytes",
		"obo_gateway_cache_evictions_total", "obo_gateway_jwks_refreshes_total", "obo_gateway_downstream_errors_total",
	} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

func TestMonitoringResources(t *testing.T) {
	helm(t)
	ms := render(t, []string{"examples/secret.yaml"})
	known := knownMetrics(t)

	// The dashboard ConfigMap, for the Grafana sidecar.
	var dashboard *corev1.ConfigMap
	for _, m := range ms.ofKind("ConfigMap") {
		var cm corev1.ConfigMap
		decodeStrict(t, m, &cm)
		if cm.Labels["grafana_dashboard"] == "1" {
			dashboard = &cm
		}
	}
	if dashboard == nil {
		t.Fatal("dashboards.enabled, but no ConfigMap labelled grafana_dashboard: \"1\"")
	}
	file, err := os.ReadFile(filepath.Join(chartDir(t), "dashboards", "obo-gateway.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := dashboard.Data["obo-gateway.json"]; strings.TrimSpace(got) != strings.TrimSpace(string(file)) {
		t.Error("the dashboard ConfigMap does not hold dashboards/obo-gateway.json")
	}
	if none := render(t, nil); len(none.ofKind("PrometheusRule")) != 0 || slices.ContainsFunc(none.ofKind("ConfigMap"), func(m manifest) bool {
		return strings.Contains(string(m.JSON), "grafana_dashboard")
	}) {
		t.Error("the default values render a dashboard or alerts")
	}

	// The alerts.
	rules := ms.ofKind("PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("%d PrometheusRules, want 1", len(rules))
	}
	var rule struct {
		APIVersion string `json:"apiVersion"`
		Spec       struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Alert       string            `json:"alert"`
					Expr        string            `json:"expr"`
					For         string            `json:"for"`
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(rules[0].JSON, &rule); err != nil {
		t.Fatal(err)
	}
	alerts := map[string]string{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = r.Expr
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s lacks a severity, summary or description", r.Alert)
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") || strings.Count(r.Expr, "{") != strings.Count(r.Expr, "}") {
				t.Errorf("alert %s: unbalanced expression %s", r.Alert, r.Expr)
			}
			// Only this release's series: the namespace and, with a
			// ServiceMonitor, its job.
			if strings.Contains(r.Expr, "obo_gateway_") && !strings.Contains(r.Expr, `namespace="apps", job=~"release-obo-gateway-metrics"`) {
				t.Errorf("alert %s does not select this release's series: %s", r.Alert, r.Expr)
			}
		}
	}
	var exprs []string
	for _, e := range alerts {
		exprs = append(exprs, e)
	}
	for m := range usedMetrics(exprs) {
		if !known[m] {
			t.Errorf("an alert uses %s, which the gateway does not export", m)
		}
	}
	for alert, want := range map[string]string{
		"OboGatewayAuthorityErrors":     `outcome=~"authority_error|timeout|unavailable|throttled|circuit_open|overloaded"`,
		"OboGatewayExchangeLatencyHigh": "histogram_quantile(0.99",
		"OboGatewayServerErrors":        `code="5xx"`,
		"OboGatewayJWKSRefreshFailing":  `obo_gateway_jwks_refreshes_total`,
		"OboGatewayNotReady":            "kube_pod_container_status_ready",
		"OboGatewayCredentialRejected":  `outcome=~"invalid_client|credential_error"`,
	} {
		if !strings.Contains(alerts[alert], want) {
			t.Errorf("alert %s missing or without %s: %q", alert, want, alerts[alert])
		}
	}
}
