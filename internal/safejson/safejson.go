// Package safejson decodes JSON that may hold secrets, such as the segments
// of a JWT, with errors that never quote the input. It verifies nothing: a
// JWT's signature is its caller's to check.
package safejson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Describe says what is wrong with JSON that encoding/json refused with err,
// without quoting it: the byte offset of a syntax error, or the field of a
// type mismatch. It reports false for any other error.
func Describe(err error) (string, bool) {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON (at byte %d)", syn.Offset), true
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON (it ends early)", true
	case errors.As(err, &typ) && typ.Field != "":
		return "field " + typ.Field + " has the wrong type", true
	}
	return "", false
}

// DecodeSegment decodes seg, one base64url segment of a compact JWT that
// holds a JSON object, into dst. Numbers decoded into an interface value
// are json.Numbers.
func DecodeSegment(seg string, dst any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return errors.New("not base64url")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		desc, ok := Describe(err)
		if !ok {
			desc = "a value has the wrong type"
		}
		return fmt.Errorf("invalid JSON: %s", desc)
	}
	if dec.InputOffset() != int64(len(b)) {
		return errors.New("invalid JSON: data after the object")
	}
	return nil
}

// DecodePayload decodes the payload of the compact JWT tok into dst, as
// DecodeSegment does.
func DecodePayload(tok string, dst any) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return fmt.Errorf("a JWT has 3 segments, not %d", len(parts))
	}
	return DecodeSegment(parts[1], dst)
}
