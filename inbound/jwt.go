package inbound

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// header is the JOSE header of token A.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	Enc  string          `json:"enc"`
}

// numericDate is a JSON number of seconds since the epoch (RFC 7519); a
// string or any other type is malformed.
type numericDate struct {
	set bool
	t   time.Time
}

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return errors.New("not a number")
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return errors.New("out of range")
	}
	sec, frac := math.Modf(f)
	d.set, d.t = true, time.Unix(int64(sec), int64(frac*1e9))
	return nil
}

// audience is "aud": a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("not a string or an array of strings")
	}
	*a = l
	return nil
}

type payload struct {
	Iss   string      `json:"iss"`
	Sub   string      `json:"sub"`
	Aud   audience    `json:"aud"`
	Exp   numericDate `json:"exp"`
	Nbf   numericDate `json:"nbf"`
	Iat   numericDate `json:"iat"` // not used, but a non-number is malformed
	Tid   string      `json:"tid"`
	Oid   string      `json:"oid"`
	Scp   string      `json:"scp"`
	Roles []string    `json:"roles"`
	Acrs  []string    `json:"acrs"`

	Azp               string `json:"azp"`
	Appid             string `json:"appid"`
	PreferredUsername string `json:"preferred_username"`
	Upn               string `json:"upn"`
	UniqueName        string `json:"unique_name"`
}

// decodeSegment decodes one base64url JWT segment holding a JSON object.
func decodeSegment(seg string, dst any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return errors.New("not base64url")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("invalid JSON: %v", scrubJSONError(err))
	}
	return nil
}

// scrubJSONError keeps the kind of a JSON error but not the input it quotes.
func scrubJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "claim " + te.Field + " has the wrong type"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error"
	}
	return "claim has the wrong type"
}
