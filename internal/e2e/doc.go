// Package e2e holds the gateway's end-to-end tests: each test starts the
// local identity provider, an echo downstream API and a complete gateway
// (internal/app) on loopback sockets and talks to them over HTTP.
package e2e
