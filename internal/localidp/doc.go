// Package localidp is a local identity provider that mimics the Microsoft
// identity platform (Entra ID) v2 endpoints closely enough to exercise
// obo-gateway end to end without a cloud account.
//
// A Server listens on a real loopback socket (plain HTTP, or HTTPS with a
// self-signed certificate when Options.TLS is set) and serves, below
// BaseURL()/{tenant} for its home tenant, each of Options.GuestTenants and,
// for discovery and keys only, "common" and "organizations":
//
//   - GET  v2.0/.well-known/openid-configuration: the discovery document
//     (issuer, jwks_uri, token_endpoint, authorization_endpoint, ...); the
//     multi-tenant names answer with the issuer template
//     BaseURL()/{tenantid}/v2.0, like Entra;
//   - GET  .well-known/openid-configuration: the v1 discovery document, whose
//     issuer is that of v1 tokens, V1IssuerFor (BaseURL()/sts/{tid}/, the
//     local https://sts.windows.net/{tid}/);
//   - GET  discovery/v2.0/keys (and discovery/keys): the JSON Web Key Set
//     with the public halves of the RSA signing keys (kid, kty, n, e, alg
//     RS256, use sig);
//   - POST oauth2/v2.0/token: the token endpoint, with the On-Behalf-Of grant
//     (urn:ietf:params:oauth:grant-type:jwt-bearer, also for a SAML 2.0
//     assertion with requested_token_type saml2), the client credentials
//     grant and the RFC 8693 token exchange grant. A tenant's endpoint only
//     exchanges tokens of that tenant; the multi-tenant names are refused.
//
// Clients authenticate with a client secret, with a certificate client
// assertion (private_key_jwt: a JWT signed with the key of a registered
// certificate named by x5t#S256 or x5t, checked for signature, aud = the
// token endpoint, iss = sub = client id, lifetime at most ten minutes, jti;
// replays refused with Options.RejectAssertionReplay), or with a federated
// token (workload identity federation: IssueServiceAccountToken mints the
// projected service account token a FederatedCredential trusts, and a
// ManagedIdentityEndpoint, started with StartManagedIdentityEndpoint,
// serves managed identity tokens in the App Service and IMDS shapes, which a
// FederatedCredential with TenantIssuer trusts).
//
// Tokens are real RS256-signed JWTs whose claims follow Entra ID v2 access
// tokens. Tests mint the user's token A with IssueToken (or sign arbitrary,
// hostile claims with SignClaims), send it through the gateway and inspect
// what the gateway did with the counters and IssuedTokens.
//
// The token endpoint validates for real: the client secret of a registered
// Client, the assertion's signature against the published keys, its issuer,
// its lifetime and its audience (the calling client's ID or IdentifierURI),
// and the format of the requested scopes. Failures are answered the way
// Entra ID answers them: a JSON body with error, error_description
// ("AADSTSnnnn: ... Trace ID: ... Correlation ID: ... Timestamp: ..."),
// error_codes, timestamp, trace_id, correlation_id and, where relevant,
// suberror and claims.
//
// A token issued by the token endpoint ("token B") has aud = the resource
// of the requested scopes (everything before the last '/' of each scope,
// for example "https://graph.microsoft.com" or "api://api-b"), scp = the
// permission names, space-joined, iss = Issuer(), azp = the calling client,
// oid, sub and tid copied from the assertion, and exp = now + TokenLifetime.
// A <resource>/.default request yields scp "default", because there are no
// consent records to expand it from. Client credentials tokens carry no scp
// but idtyp "app", roles ["Default.Access"] and oid = sub = a stable
// service principal ID per client. The OpenID Connect scopes openid,
// profile, email and offline_access are accepted next to resource scopes
// and ignored. With Options.IssueRefreshTokens answers carry an opaque
// refresh_token, which is never accepted back; otherwise none is issued.
//
// Agent identities (Microsoft Entra Agent ID, Options.AgentIdentities)
// belong to a registered Client, their blueprint, and have agent users. The
// blueprint's client credentials request with fmi_path = <agent id> and scope
// api://AzureADTokenExchange/.default yields T1 (aud TokenExchangeAppID, an
// FMI sub naming blueprint and agent), for its own agents only. An agent
// identity authenticates with T1 as its client_assertion (issued here, for
// it, unexpired), for client credentials (T2 for the token exchange scope,
// an app token with roles otherwise), for the On-Behalf-Of grant, and for
// the user_fic grant, which takes T2 as user_federated_identity_credential
// and username or user_id of one of the agent's users and issues that
// user's delegated token (scp, oid, upn, azp = the agent, tid).
// SetLegBehavior programs failures per leg; LegRequests counts each leg.
// GET common/discovery/instance answers MSAL's instance discovery.
//
// Tests program the answers of the token endpoint with SetDefaultBehavior and
// SetUserBehavior (multi-factor challenge, interaction or consent required,
// throttling, server errors) and SetNextBehavior (a passing fault: the next
// n requests only), and its timing with SetLatency and SetHang;
// MaxConcurrentTokenRequests reports the most token requests it served at
// once.
// Kill and Restart take the whole server down and bring it back on the same
// address, with its keys and records. Signing keys are rotated with
// RotateKey and withdrawn with RemoveKey. TokenRequestForms and MintedTokens
// return every credential and token A seen, for secret hygiene checks.
//
// The package is a test and demo helper, not a production identity
// provider: it keeps every issued token in memory and it has no users,
// no authorization endpoint behaviour and no refresh grant.
package localidp
