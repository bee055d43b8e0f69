package chartcheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// configKeys returns the key paths of the gateway's configuration file, from
// the yaml tags of config.Config: "client.id", "routes[].name", ...
func configKeys(t reflect.Type, prefix string, keys map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			keys[key] = true
			configKeys(f.Type, key, keys)
		}
	case reflect.Slice:
		configKeys(t.Elem(), prefix+"[]", keys)
	}
}

// schemaKeys returns the key paths a JSON schema describes under node.
func schemaKeys(node map[string]any, prefix string, keys map[string]bool) {
	if props, ok := node["properties"].(map[string]any); ok {
		for name, sub := range props {
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			m, _ := sub.(map[string]any)
			if _, refused := m["not"]; refused {
				continue // described only to be refused
			}
			keys[key] = true
			schemaKeys(m, key, keys)
		}
	}
	if items, ok := node["items"].(map[string]any); ok {
		schemaKeys(items, prefix+"[]", keys)
	}
}

// gatewayConfigHas reports whether the gateway's configuration has the key
// path, such as "client.certificate".
func gatewayConfigHas(key string) bool {
	keys := map[string]bool{}
	configKeys(reflect.TypeFor[config.Config](), "", keys)
	return keys[key]
}

// TestSchemaDescribesGatewayKeys checks that values.schema.json describes
// under gateway.config only keys the gateway's configuration has, so that
// the chart never invites a key the gateway refuses. Keys the schema does
// not describe are allowed through (the gateway validates them when it
// starts); they are listed in the test log.
func TestSchemaDescribesGatewayKeys(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	cfgSchema, ok := dig(schema, "properties", "gateway", "properties", "config").(map[string]any)
	if !ok {
		t.Fatal("values.schema.json does not describe gateway.config")
	}
	inSchema := map[string]bool{}
	schemaKeys(cfgSchema, "", inSchema)
	inConfig := map[string]bool{}
	configKeys(reflect.TypeFor[config.Config](), "", inConfig)

	for key := range inSchema {
		if !inConfig[key] {
			t.Errorf("values.schema.json describes gateway.config.%s, which the gateway's configuration does not have", key)
		}
	}
	var undescribed []string
	for key := range inConfig {
		if !inSchema[key] && !strings.HasPrefix(key, "client.secret") && !strings.HasPrefix(key, "client.certificate") && key != "client.assertion_file" {
			undescribed = append(undescribed, key)
		}
	}
	slices.Sort(undescribed)
	t.Logf("configuration keys passed through without a schema: %s", strings.Join(undescribed, ", "))

	// The chart owns the credential keys.
	for _, key := range []string{"secret", "secret_file", "certificate", "assertion_file"} {
		not, ok := dig(cfgSchema, "properties", "client", "properties", key, "not").(map[string]any)
		if !ok || len(not) != 0 {
			t.Errorf("values.schema.json must refuse gateway.config.client.%s (the chart sets it from gateway.credential)", key)
		}
	}
}
