package tokenapi

import (
	"encoding/json"
	"github.com/obo-gateway/obo-gateway/obo"
	"net/url"
	"strconv"
	"strings"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/idshape"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// The query parameters of Microsoft's sidecar that the API reads.
const (
	paramAgentIdentity = "AgentIdentity"
	paramAgentUsername = "AgentUsername"
	paramAgentUserID   = "AgentUserId"
	paramScopes        = "optionsOverride.Scopes"
	paramAppToken      = "optionsOverride.RequestAppToken"
	paramTenant        = "optionsOverride.AcquireTokenOptions.Tenant"
	paramForceRefresh  = "optionsOverride.AcquireTokenOptions.ForceRefresh"
	paramClaims        = "optionsOverride.AcquireTokenOptions.Claims"
	paramRelativePath  = "optionsOverride.RelativePath"
	paramHTTPMethod    = "optionsOverride.HttpMethod"
)

// supported are the optionsOverride parameters the API honours; any other
// optionsOverride.* parameter is refused, so that no setting Microsoft's
// sidecar would apply (another BaseUrl, say) is silently ignored.
var supported = map[string]bool{paramScopes: true, paramAppToken: true, paramTenant: true, paramForceRefresh: true,
	paramClaims: true, paramRelativePath: true, paramHTTPMethod: true}

// refusedOverride is a request parameter the API refuses: malformed, not
// supported, or widening what the route grants when the configuration does
// not allow it.
type refusedOverride struct {
	reason, detail string
}

// tokenRequest reads Microsoft's parameters of q for route rt and returns
// what to ask the proxy handler for.
func (s *Server) tokenRequest(rt proxy.RouteInfo, q url.Values, caller *proxy.Caller) (proxy.TokenRequest, *refusedOverride) {
	for k := range q {
		if strings.HasPrefix(k, "optionsOverride.") && !supported[k] {
			return proxy.TokenRequest{}, &refusedOverride{"override_not_supported", k + " is not supported by obo-gateway's token API"}
		}
	}
	req := proxy.TokenRequest{Caller: caller, Tenant: q.Get(paramTenant)}
	appToken, err := boolParam(q, paramAppToken)
	if err == nil {
		req.ForceRefresh, err = boolParam(q, paramForceRefresh)
	}
	if err != nil {
		return req, &refusedOverride{"bad_override", err.Error()}
	}
	if claims := q.Get(paramClaims); claims != "" {
		if !json.Valid([]byte(claims)) {
			return req, &refusedOverride{"bad_override", paramClaims + " must be a JSON claims request"}
		}
		req.Claims = claims
	}
	widen := func(param, override string) *refusedOverride {
		if s.allowed(rt.Name, override) {
			return nil
		}
		return &refusedOverride{"override_not_allowed", param + " widens what route " + rt.Name +
			" grants; add " + override + " to token_api.allow_overrides (or the route's allow_overrides) to allow it"}
	}
	if scopes := q[paramScopes]; len(scopes) > 0 && !proxy.SameScopes(scopes, rt.Scopes) {
		if r := widen(paramScopes, config.OverrideScopes); r != nil {
			return req, r
		}
		req.Scopes = scopes
	}
	agent := q.Get(paramAgentIdentity)
	if agent != "" && rt.AgentIdentity != "" && !strings.EqualFold(agent, rt.AgentIdentity) {
		if r := widen(paramAgentIdentity, config.OverrideAgentIdentity); r != nil {
			return req, r
		}
	}
	req.AgentID = agent
	if agent == "" {
		agent = rt.AgentIdentity
	}
	// As Microsoft's: the UPN wins over the object id, and neither counts
	// without an agent identity.
	if agent != "" {
		user, param := q.Get(paramAgentUsername), paramAgentUsername
		if user == "" {
			if id, ok := q[paramAgentUserID]; ok {
				if !idshape.IsGUID(id[0]) || strings.Trim(id[0], "0-") == "" {
					return req, &refusedOverride{"bad_override", "AgentUserId must be a non-empty GUID."}
				}
				user, param = id[0], paramAgentUserID
			}
		}
		if user != "" && rt.AgentUser != "" && !strings.EqualFold(user, rt.AgentUser) {
			if r := widen(param, config.OverrideAgentUser); r != nil {
				return req, r
			}
		}
		if param == paramAgentUsername {
			req.AgentUsername = user
		} else {
			req.AgentUserID = user
		}
	}
	userRoute := rt.Flow == obo.FlowOnBehalfOf || rt.Flow == obo.FlowAgentOnBehalfOf || rt.Flow == obo.FlowAgentUser
	switch {
	case agent == "" && appToken && userRoute:
		if r := widen(paramAppToken, config.OverrideAppToken); r != nil {
			return req, r
		}
		req.Flow = obo.FlowClientCredentials
	case agent == "":
		// The route's own flow; an agent route without a fixed identity
		// is refused by the handler.
	case req.AgentUsername != "" || req.AgentUserID != "":
		req.Flow = obo.FlowAgentUser
	case appToken:
		if userRoute {
			if r := widen(paramAppToken, config.OverrideAppToken); r != nil {
				return req, r
			}
		}
		req.Flow = obo.FlowAgentApp
	case rt.Flow == obo.FlowOnBehalfOf || rt.Flow == obo.FlowAgentOnBehalfOf:
		req.Flow = obo.FlowAgentOnBehalfOf
	case rt.Flow == obo.FlowAgentUser:
		req.Flow = obo.FlowAgentUser
	default:
		req.Flow = obo.FlowAgentApp
	}
	return req, nil
}

// boolParam reads an optional boolean parameter as ASP.NET binds one.
func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return false, &paramError{name: name}
	}
	return b, nil
}

type paramError struct{ name string }

func (e *paramError) Error() string { return e.name + " must be true or false" }
