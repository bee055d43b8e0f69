// Package tokenapi serves the HTTP API of Microsoft's Entra SDK for AgentID
// sidecar (Microsoft.Identity.Web.Sidecar) on the gateway's token API
// listener, so that Microsoft's clients (SidecarAuthProvider and its .NET
// and Python peers) work unchanged: /healthz, /Validate,
// /AuthorizationHeader[Unauthenticated]/{name} and
// /DownstreamApi[Unauthenticated]/{name}, where {name} is a route. The
// tokens come from the proxy handler's routes, cache and policy; this
// package reads Microsoft's parameters, refuses overrides that widen what a
// route grants, and answers in Microsoft's shapes with RFC 9457 problem
// details for errors.
package tokenapi
