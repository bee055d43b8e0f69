// Package app assembles a running gateway from a configuration: the
// authority client, the key set, the validator, the token cache, the
// metrics, the proxy handler, and the two listeners (the gateway and the
// admin endpoints /healthz, /readyz and /metrics). It is shared by
// "obo-gateway serve", "obo-gateway dev" and the end-to-end tests.
package app
