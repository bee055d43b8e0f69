// Package conformance holds tests, and nothing else, that compare the
// gateway's token requests with those of the Microsoft Authentication
// Library for Go (MSAL), the Microsoft identity platform's own client.
//
// Both run against internal/localidp served over TLS (MSAL insists on an
// https authority) with the same application registration and certificate;
// the identity provider records the form of each token request, and the
// tests assert that the gateway's On-Behalf-Of and client credentials
// requests carry the same parameters and an equivalent client assertion
// (same header fields and claims). Where the gateway differs on purpose,
// the test lists the difference and the reason.
//
// MSAL is a test-only dependency: no package of the gateway imports it.
package conformance
