package safejson

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeSegment(t *testing.T) {
	const secret = "s3cr3t-token-value"
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	type claims struct {
		Exp float64 `json:"exp"`
		Sub string  `json:"sub"`
	}
	for _, tc := range []struct {
		name, seg, wantErr string
	}{
		{"object", enc(`{"exp":1,"sub":"` + secret + `"}`), ""},
		{"padded", enc(`{"exp":1}`) + "==", ""},
		{"not base64url", "!!", "not base64url"},
		{"not an object", enc(`["` + secret + `"]`), "not a JSON object"},
		{"syntax", enc(`{"sub":` + secret + `}`), "not valid JSON (at byte"},
		{"cut short", enc(`{"sub":"` + secret), "not valid JSON (it ends early)"},
		{"wrong type", enc(`{"exp":"` + secret + `"}`), "field exp has the wrong type"},
		{"data after the object", enc(`{"exp":1} {"sub":"` + secret + `"}`), "data after the object"},
	} {
		var c claims
		err := DecodeSegment(tc.seg, &c)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		case err != nil && strings.Contains(err.Error(), secret):
			t.Errorf("%s: the error quotes the input: %v", tc.name, err)
		}
	}
	var m map[string]any
	if err := DecodePayload("h."+enc(`{"exp":1700000000}`)+".s", &m); err != nil || m["exp"] != json.Number("1700000000") {
		t.Errorf("DecodePayload = %v, %v; want exp as a json.Number", m, err)
	}
	if err := DecodePayload("a.b", &m); err == nil {
		t.Error("DecodePayload of two segments succeeded")
	}
}
