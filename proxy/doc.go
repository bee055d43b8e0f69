// Package proxy is the gateway's HTTP handler. For each request it finds the
// route by path prefix, has token A validated (package inbound) and
// authorized against the gateway's policy, obtains token B for the route's
// scopes from the cache or by an exchange, replaces the Authorization header,
// and proxies the request to the route's upstream with httputil.ReverseProxy.
//
// Every refusal is answered by the gateway itself with a JSON body
// {"error": ..., "error_description": ...} and, for authentication problems,
// a WWW-Authenticate challenge the client can act on; see Handler for the
// full table.
package proxy
