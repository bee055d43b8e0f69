package localidp

import (
	"strings"
)

// scopeSet is a parsed, valid scope parameter.
type scopeSet struct {
	resource    string   // the resource every scope names
	permissions []string // the permission names, without the resource
	requested   []string // every requested scope, as sent
	isDefault   bool     // the request is for <resource>/.default
}

// scp returns the scp claim of a token for the scopes. A .default request
// yields "default": the local identity provider has no consent records to
// expand it from.
func (ss scopeSet) scp() string {
	if ss.isDefault {
		return "default"
	}
	return strings.Join(ss.permissions, " ")
}

// parseScopes validates a space-separated scope parameter: every scope is
// <resource>/<permission> (OpenID Connect scopes are ignored), all name the
// same resource, and .default stands alone.
func parseScopes(raw string) (scopeSet, *oauthError) {
	var ss scopeSet
	ss.requested = strings.Fields(raw)
	for _, scope := range ss.requested {
		if oidcScopes[scope] {
			continue
		}
		i := strings.LastIndex(scope, "/")
		if i <= 0 || i == len(scope)-1 || strings.HasSuffix(scope[:i], "/") || strings.HasSuffix(scope[:i], ":") {
			return ss, badRequest("invalid_scope", 70011,
				"The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", raw)
		}
		resource, permission := scope[:i], scope[i+1:]
		if ss.resource != "" && ss.resource != resource {
			return ss, badRequest("invalid_scope", 28000,
				"Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", raw)
		}
		ss.resource = resource
		if permission == ".default" {
			ss.isDefault = true
		}
		ss.permissions = append(ss.permissions, permission)
	}
	switch {
	case ss.resource == "":
		return ss, badRequest("invalid_scope", 70011,
			"The provided value for the input parameter 'scope' is not valid. The scope %s does not name a resource.", raw)
	case ss.isDefault && len(ss.permissions) > 1:
		return ss, badRequest("invalid_scope", 70011,
			"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid: .default scope can't be combined with resource-specific scopes.", raw)
	}
	return ss, nil
}
