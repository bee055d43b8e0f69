// Package agentclients holds tests, and nothing else, that run Microsoft's
// own agent clients from the npm package @microsoft/agents-hosting (pinned
// by package-lock.json in this folder; install it with
// `npm ci --prefix internal/agentclients`) against internal/localidp.
//
// msal-agentic.js runs MsalTokenProvider's getAgenticApplicationToken (T1),
// getAgenticInstanceToken (T2) and getAgenticUserToken (user_fic) with an
// authority on localidp's loopback HTTPS URL, with each blueprint credential
// (secret, certificate, federated token file); the Go test checks the tokens
// Microsoft's code obtained, then sends the gateway's requests for the same
// legs and compares them with Microsoft's field by field, listing the
// deliberate differences with their reasons.
//
// sidecar.js runs SidecarAuthProvider's isHealthy, getAccessToken,
// getAgenticApplicationToken, getAgenticInstanceToken and
// getAgenticUserToken against the token API of the real gateway binary
// (configured as the agent identity blueprint on localidp, with the
// downstream API names "default" and "agenticblueprint" the provider uses),
// through a front that records what the provider sends; the Go test checks
// that each call returns the token localidp issued for its leg.
//
// loopback.js keeps both scripts from connecting anywhere but loopback.
//
// The tests skip only when node is not installed, and never under CI=true.
package agentclients
