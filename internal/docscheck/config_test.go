package docscheck

import (
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// configKeys returns every key the configuration decoder accepts below
// type t, as dotted paths from prefix. It follows the decoder's rules: a
// struct field is a key by the name in its yaml tag; a type that
// unmarshals itself is a value, as is a list of anything but structs; the
// items of a list of structs are written name[].
func configKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		ft := f.Type
		switch {
		case reflect.PointerTo(ft).Implements(unmarshaler):
			out = append(out, key)
		case ft.Kind() == reflect.Struct:
			out = append(out, configKeys(ft, key)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct &&
			!reflect.PointerTo(ft.Elem()).Implements(unmarshaler):
			out = append(out, configKeys(ft.Elem(), key+"[]")...)
		default:
			out = append(out, key)
		}
	}
	return out
}

func TestConfigKeysFollowTheDecoder(t *testing.T) {
	keys := configKeys(reflect.TypeFor[config.Config](), "")
	// Keys of each shape: top level, nested, below a list, a self-decoding
	// value (a duration, a size, a boolean).
	for _, want := range []string{"listen", "authority.breaker.failures", "routes[].path_prefix",
		"cache.redis.url", "cache.max_bytes", "routes[].forward_cookies", "inbound.clock_skew"} {
		if !slices.Contains(keys, want) {
			t.Errorf("configKeys lacks %q (found %q)", want, keys)
		}
	}
	// A walk that stopped at a mapping would name the mapping.
	for _, mapping := range []string{"authority", "client.certificate", "cache.redis", "routes"} {
		if slices.Contains(keys, mapping) {
			t.Errorf("configKeys names the mapping %q instead of its keys", mapping)
		}
	}
	// Every key the walk finds must be one the decoder accepts: a file
	// holding each of them (as null) has no unknown key.
	file, err := yaml.Marshal(keyTree(keys))
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Parse(file, "walk.yaml", func(string) (string, bool) { return "", false })
	var problems config.Problems
	if err != nil && !errors.As(err, &problems) {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Message, "unknown key") {
			t.Errorf("the walk found %s, which the decoder does not accept: %s", p.Key, p.Message)
		}
	}
}

// keyTree returns the mapping that holds each of keys with a null value;
// a list (name[]) holds one item.
func keyTree(keys []string) map[string]any {
	tree := make(map[string]any)
	for _, k := range keys {
		m := tree
		parts := strings.Split(k, ".")
		for _, part := range parts[:len(parts)-1] {
			if name, ok := strings.CutSuffix(part, "[]"); ok {
				list, _ := m[name].([]any)
				if list == nil {
					list = []any{map[string]any{}}
					m[name] = list
				}
				m = list[0].(map[string]any)
				continue
			}
			next, _ := m[part].(map[string]any)
			if next == nil {
				next = make(map[string]any)
				m[part] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = nil
	}
	return tree
}

// configTableKey is the key in the first cell of a row of a "| key |" table.
var configTableKey = regexp.MustCompile("^\\| `([^`]+)` \\|")

func TestConfigurationDocumentNamesEveryKey(t *testing.T) {
	root := repoRoot(t)
	doc := readDoc(t, root, "docs/configuration.md")
	keys := configKeys(reflect.TypeFor[config.Config](), "")
	for _, k := range keys {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/configuration.md does not name the configuration key `%s`", k)
		}
	}
	// The other way round: every key a table documents is one the decoder
	// accepts.
	header := ""
	for _, l := range prose(doc) {
		if !strings.HasPrefix(l.text, "|") {
			header = ""
			continue
		}
		if header == "" {
			header = l.text
			continue
		}
		m := configTableKey.FindStringSubmatch(l.text)
		if m == nil || !strings.HasPrefix(header, "| key |") {
			continue
		}
		if !slices.Contains(keys, m[1]) {
			t.Errorf("docs/configuration.md:%d documents `%s`, which the decoder does not accept", l.n, m[1])
		}
	}
}
