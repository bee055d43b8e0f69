package docscheck

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/metrics"
)

const metricPrefix = "obo_gateway_"

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	metricName = regexp.MustCompile(metricPrefix + `[a-z0-9_]+`)
)

// registeredMetrics returns the names of the gateway's own metrics: those
// New registers, with every Observe method called (their functions answer
// zero). A vector without children is not gathered, so the collectors the
// Metrics fields hold are described as well.
func registeredMetrics(t *testing.T) []string {
	t.Helper()
	m := metrics.New("docscheck")
	mv := reflect.ValueOf(m)
	for i := range mv.NumMethod() {
		if !strings.HasPrefix(mv.Type().Method(i).Name, "Observe") {
			continue
		}
		method := mv.Method(i)
		args := make([]reflect.Value, method.Type().NumIn())
		for j := range args {
			at := method.Type().In(j)
			if at.Kind() == reflect.Func {
				args[j] = reflect.MakeFunc(at, func([]reflect.Value) []reflect.Value {
					out := make([]reflect.Value, at.NumOut())
					for k := range out {
						out[k] = reflect.Zero(at.Out(k))
					}
					return out
				})
			} else {
				args[j] = reflect.Zero(at)
			}
		}
		method.Call(args)
	}
	names := make(map[string]bool)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		names[f.GetName()] = true
	}
	descs := make(chan *prometheus.Desc, 64)
	go func() {
		sv := mv.Elem()
		for i := range sv.NumField() {
			if !sv.Type().Field(i).IsExported() {
				continue
			}
			if c, ok := sv.Field(i).Interface().(prometheus.Collector); ok {
				c.Describe(descs)
			}
		}
		close(descs)
	}()
	for d := range descs {
		match := descName.FindStringSubmatch(d.String())
		if match == nil {
			t.Fatalf("no fqName in %s", d)
		}
		names[match[1]] = true
	}
	var out []string
	for n := range names {
		if strings.HasPrefix(n, metricPrefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func TestRegisteredMetricsAreFound(t *testing.T) {
	names := registeredMetrics(t)
	// One of each kind: a vector that has no child yet, a plain gauge
	// set in New, a function gauge an Observe method registers.
	for _, want := range []string{"obo_gateway_cache_lookups_total", "obo_gateway_build_info",
		"obo_gateway_cache_entries", "obo_gateway_jwks_keys"} {
		if !slices.Contains(names, want) {
			t.Errorf("registeredMetrics lacks %s (found %q)", want, names)
		}
	}
}

func TestMetricsDocumentNamesEveryMetric(t *testing.T) {
	root := repoRoot(t)
	doc := readDoc(t, root, "docs/metrics.md")
	for _, n := range registeredMetrics(t) {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/metrics.md does not name the metric `%s`", n)
		}
	}
}

func TestDocumentsNameOnlyRegisteredMetrics(t *testing.T) {
	root := repoRoot(t)
	names := registeredMetrics(t)
	for _, doc := range checkedDocuments(t, root) {
		for _, l := range strings.Split(readDoc(t, root, doc), "\n") {
			for _, n := range metricName.FindAllString(l, -1) {
				if slices.Contains(names, n) {
					continue
				}
				// A histogram's series.
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
				if base != n && slices.Contains(names, base) {
					continue
				}
				t.Errorf("%s names %s, which the gateway does not register", doc, n)
			}
		}
	}
}
