// Package echo is the echo downstream API used by end-to-end tests and by
// `obo-gateway dev`: it answers every request with a JSON description of
// what it received, so a test can check what the gateway forwarded (method,
// path, query, body and every header, in particular Authorization) and,
// under "token", the claims of the bearer token it received, decoded without
// checking the signature so that a person sees what token B is.
//
// Request headers, forwarded by the gateway like any other, change the
// answer:
//
//   - X-Echo-Status: N answers with status N (100-599) instead of 200, still
//     with the JSON body;
//   - X-Echo-WWW-Authenticate: V sets the WWW-Authenticate header of the
//     answer to V, to simulate a downstream claims challenge;
//   - X-Echo-Revoke-Sha256: H answers 401 with a continuous access
//     evaluation claims challenge (CAEChallenge, unless X-Echo-WWW-Authenticate
//     gives another) when the request's bearer token has SHA-256 H (hex):
//     the token is "revoked", a newer one passes;
//   - X-Echo-Stream: N (1-10000) streams N lines "chunk i\n" (i from 0),
//     flushed one by one 10ms apart, instead of the JSON body.
package echo
