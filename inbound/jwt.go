package inbound

import (
	"encoding/json"
	"errors"
	"math"
	"time"
)

// header is the JOSE header of token A.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
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

	// Idtyp is Entra's "app" or "user" token type, when the application
	// asks for it.
	Idtyp string `json:"idtyp"`
	// Claims of ID tokens and security event tokens, which no access
	// token carries (OpenID Connect Core 2, RFC 8417 2.2); only their
	// presence matters.
	Nonce  json.RawMessage `json:"nonce"`
	AtHash json.RawMessage `json:"at_hash"`
	CHash  json.RawMessage `json:"c_hash"`
	Events json.RawMessage `json:"events"`
}
