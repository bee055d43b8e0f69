// Package inbound authenticates the caller's token A: it reads the bearer
// credential, verifies the JWT with the authority's published keys (KeySet),
// checks its issuer, tenant, audience, lifetime and algorithm (Validator),
// and remembers verified tokens so that each signature is checked once
// (VerifiedCache). Policy on the validated claims, such as required scopes,
// is the caller's.
package inbound
