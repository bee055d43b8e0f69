// Package obo is the gateway's client of the authority: it reads the
// authority's OpenID Connect discovery document, and it asks the token
// endpoint for token B with the OAuth 2.0 On-Behalf-Of grant (RFC 7523 JWT
// bearer, as the Microsoft identity platform implements it), with an RFC
// 8693 token exchange (ProtocolRFC8693), or with the client credentials
// grant. For a multi-tenant authority (common, organizations) a user's
// exchange goes to the token endpoint of the user's own tenant.
//
// The gateway authenticates with a Credential: ClientSecret, SecretFile, a
// Certificate (signed client assertions, files reloaded when they change),
// an AssertionFile (workload identity federation) or a ManagedIdentity (the
// Azure host's managed identity token as a federated assertion). A
// Presentation says
// how token B is handed to a downstream API (Bearer, or SAML assertions).
//
// As an agent identity blueprint (Microsoft Entra Agent ID), a Client
// obtains tokens as one of the blueprint's agent identities (AgentToken,
// CachedAgentToken): T1, the blueprint's client credentials token for the
// agent (fmi_path), authenticates the agent's app-only, On-Behalf-Of and
// agent user (user_fic, with T2) requests. T1 and T2 are cached in
// Config.AgentCache and refreshed ahead.
//
// A refusal by the authority is returned as an *Error that keeps every field
// of the authority's error document, so callers can relay an MFA or
// conditional-access claims challenge to the client unchanged. A failure to
// reach the authority at all is returned as an *UnavailableError.
//
// A Client is resilient to a failing authority: it retries temporary faults
// (connection errors, timeouts, 429, 5xx) with jittered backoff or the
// authority's Retry-After within one deadline per exchange, opens a circuit
// breaker after consecutive faults (then failing at once with
// ErrCircuitOpen until a probe succeeds), and bounds the exchanges in
// progress, refusing with ErrOverloaded after a queue timeout.
//
// Nothing in this package logs, and no error it returns contains token A,
// token B or the client credential: the authority's own error text has the
// secrets of the request it answers replaced with Redacted.
package obo
