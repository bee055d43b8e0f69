package obo

import (
	"encoding/json"
	"fmt"
)

// MergeClaims merges two claims requests (JSON objects such as
// {"access_token":{"xms_cc":{"values":["cp1"]}}}) into one: nested objects
// are merged key by key, and where both give a non-object value for a key,
// b's wins. An empty string stands for no claims; the result is "" when both
// are empty.
func MergeClaims(a, b string) (string, error) {
	switch {
	case a == "":
		if b == "" {
			return "", nil
		}
		if !json.Valid([]byte(b)) {
			return "", fmt.Errorf("claims %q are not JSON", truncate(b))
		}
		return b, nil
	case b == "":
		return a, nil
	}
	var ma, mb map[string]any
	if err := json.Unmarshal([]byte(a), &ma); err != nil {
		return "", fmt.Errorf("claims are not a JSON object: %w", err)
	}
	if err := json.Unmarshal([]byte(b), &mb); err != nil {
		return "", fmt.Errorf("claims are not a JSON object: %w", err)
	}
	out, err := json.Marshal(mergeObjects(ma, mb))
	if err != nil {
		return "", err
	}
	return string(out), nil
}

func mergeObjects(a, b map[string]any) map[string]any {
	for k, vb := range b {
		if oa, ok := a[k].(map[string]any); ok {
			if ob, ok := vb.(map[string]any); ok {
				a[k] = mergeObjects(oa, ob)
				continue
			}
		}
		a[k] = vb
	}
	return a
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
