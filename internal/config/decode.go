package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder decodes an expanded YAML node tree into a Config strictly. It is
// written by hand rather than with yaml.Decoder.KnownFields because the
// latter needs the text, not a node tree, and re-encoding the tree after
// expansion would lose the line numbers of the original file. Walking the
// tree also lets every problem name its key path.
type decoder struct {
	file      string
	lookupEnv func(string) (string, bool)
	problems  []Problem
	// failed holds the key paths whose values could not be decoded, so that
	// validation does not report them a second time.
	failed []string
	// lines maps the key path of every key and list item met to its line.
	lines map[string]int
	// set holds the key paths whose values were present and not null.
	set map[string]bool
}

func newDecoder(file string, lookupEnv func(string) (string, bool)) *decoder {
	return &decoder{
		file:      file,
		lookupEnv: lookupEnv,
		lines:     make(map[string]int),
		set:       make(map[string]bool),
	}
}

func (d *decoder) add(line int, key, msg string) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Key: key, Message: msg})
}

func (d *decoder) fail(line int, key, msg string) {
	d.add(line, key, msg)
	d.failed = append(d.failed, key)
}

// lineOf returns the line of key, or of the nearest enclosing key that
// appears in the file, or 0.
func (d *decoder) lineOf(key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if l, ok := d.lines[k]; ok {
			return l
		}
	}
	return 0
}

// hasFailed reports whether key is, or lies below, a key whose value could
// not be decoded.
func (d *decoder) hasFailed(key string) bool {
	for _, f := range d.failed {
		if within(key, f) {
			return true
		}
	}
	return false
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decode stores the value of node n, found at key path key, into v. A null
// value leaves v unchanged.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	n = resolveAlias(n)
	if isNull(n) {
		return
	}
	d.set[key] = true
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if n.Kind == yaml.ScalarNode {
			s, ok := d.expandScalar(n, key)
			if !ok {
				return
			}
			c := *n
			c.Value = s
			n = &c
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(n.Line, key, err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer: // a section whose presence matters, such as managed_identity: {}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), key)
	case reflect.Struct:
		d.decodeStruct(n, v, key)
	case reflect.Slice:
		d.decodeSlice(n, v, key)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n.Line, key, "must be a string, not "+kindName(n))
			return
		}
		// On failure the value is kept unexpanded, so that checks that
		// only look at whether it is set do not report it again.
		s, _ := d.expandScalar(n, key)
		v.SetString(s)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode {
			d.fail(n.Line, key, "must be a whole number, not "+kindName(n))
			return
		}
		s, ok := d.expandScalar(n, key)
		if !ok {
			return
		}
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || v.OverflowInt(i) {
			d.fail(n.Line, key, fmt.Sprintf("%q must be a whole number, such as 5", s))
			return
		}
		v.SetInt(i)
	default:
		panic(fmt.Sprintf("config: field %s has unsupported type %s", key, v.Type()))
	}
}

// expandScalar returns the value of scalar n with environment references
// expanded. Only string scalars are expanded: a number or a boolean cannot
// contain a reference. It reports false, after recording the problems, when
// a reference cannot be expanded.
func (d *decoder) expandScalar(n *yaml.Node, key string) (string, bool) {
	if n.ShortTag() != "!!str" {
		return n.Value, true
	}
	s, errs := expand(n.Value, d.lookupEnv)
	for _, e := range errs {
		d.fail(n.Line, key, e)
	}
	return s, errs == nil
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, key, "must be a list, not "+kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		k := key + "[" + strconv.Itoa(i) + "]"
		d.lines[k] = item.Line
		d.decode(item, s.Index(i), k)
	}
	v.Set(s)
}

type keyValue struct{ key, value *yaml.Node }

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		if key == "" {
			d.fail(n.Line, key, "the configuration must be a mapping of keys to values, not "+kindName(n))
		} else {
			d.fail(n.Line, key, "must be a mapping of keys to values, not "+kindName(n))
		}
		return
	}
	fields := make(map[string]int)
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	for _, kv := range d.pairs(n, key, map[*yaml.Node]bool{n: true}) {
		name := kv.key.Value
		k := joinKey(key, name)
		idx, ok := fields[name]
		if !ok {
			msg := "unknown key"
			if s := suggest(name, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.add(kv.key.Line, k, msg)
			continue
		}
		d.lines[k] = kv.key.Line
		d.decode(kv.value, v.Field(idx), k)
	}
}

// pairs returns the key/value pairs of mapping n, with merge keys (<<)
// resolved: keys written in n itself win over merged ones, and earlier
// merged mappings win over later ones. Duplicate keys are reported.
// visited holds the mappings already merged, so that each is merged once
// however often it is referred to.
func (d *decoder) pairs(n *yaml.Node, key string, visited map[*yaml.Node]bool) []keyValue {
	seen := make(map[string]int)
	var (
		out    []keyValue
		merges []*yaml.Node
	)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.add(k.Line, key, "keys must be plain names, not "+kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, joinKey(key, k.Value), fmt.Sprintf("duplicate key (first defined on line %d)", first))
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, keyValue{k, val})
	}
	for _, m := range merges {
		m = resolveAlias(m)
		var sources []*yaml.Node
		switch m.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{m}
		case yaml.SequenceNode:
			for _, s := range m.Content {
				sources = append(sources, resolveAlias(s))
			}
		}
		for _, s := range sources {
			if s.Kind != yaml.MappingNode {
				d.add(m.Line, joinKey(key, "<<"), "a merge key needs a mapping or a list of mappings")
				continue
			}
			if visited[s] {
				continue
			}
			visited[s] = true
			for _, kv := range d.pairs(s, key, visited) {
				if _, ok := seen[kv.key.Value]; !ok {
					seen[kv.key.Value] = kv.key.Line
					out = append(out, kv)
				}
			}
		}
		if len(sources) == 0 {
			d.add(m.Line, joinKey(key, "<<"), "a merge key needs a mapping or a list of mappings")
		}
	}
	return out
}

// suggest returns the known key that name was most likely meant to be, or
// "" when none is close.
func suggest(name string, fields map[string]int) string {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	best, bestDist := "", 3
	for f := range fields {
		if norm(f) == norm(name) {
			return f
		}
		if dist := editDistance(name, f); dist < bestDist || dist == bestDist && f < best {
			best, bestDist = f, dist
		}
	}
	if bestDist > 2 || bestDist >= len(name) {
		return ""
	}
	return best
}

// editDistance returns the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
