package obo

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
)

// Redacted stands in for a secret of the gateway's own that the authority
// quoted in its answer.
const Redacted = "[redacted]"

// secretParams are the token request parameters that carry a secret: the
// client credential, token A, and tokens of earlier legs sent on.
var secretParams = []string{
	"client_secret", "client_assertion", "assertion", "subject_token",
	"user_federated_identity_credential", "refresh_token",
}

// minSegment is the shortest part of a JWT that is scrubbed on its own: a
// token's signature or payload quoted alone still identifies it.
const minSegment = 16

// secretScrubber returns a replacer of every secret the token request form
// sends (as sent and form-encoded, and each long part of a JWT) with
// Redacted, longest first, so that a whole token is replaced before its
// parts. It returns nil when the form holds no secret.
func secretScrubber(form url.Values) *strings.Replacer {
	var needles []string
	add := func(s string) {
		if s != "" && !slices.Contains(needles, s) {
			needles = append(needles, s)
		}
	}
	for _, p := range secretParams {
		for _, v := range form[p] {
			add(v)
			add(url.QueryEscape(v))
			if parts := strings.Split(v, "."); len(parts) >= 3 {
				for _, part := range parts {
					if len(part) >= minSegment {
						add(part)
					}
				}
			}
		}
	}
	if len(needles) == 0 {
		return nil
	}
	slices.SortFunc(needles, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(needles))
	for _, n := range needles {
		pairs = append(pairs, n, Redacted)
	}
	return strings.NewReplacer(pairs...)
}

// scrub replaces the secrets r knows in every text field of e, which the
// gateway relays to callers and writes to its logs.
func (e *Error) scrub(r *strings.Replacer) *Error {
	if r == nil {
		return e
	}
	for _, f := range []*string{&e.Code, &e.Description, &e.Timestamp, &e.TraceID, &e.CorrelationID, &e.SubError, &e.Claims} {
		*f = r.Replace(*f)
	}
	return e
}
