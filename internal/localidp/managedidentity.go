package localidp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The paths a ManagedIdentityEndpoint serves: App Service's (and Container
// Apps') IDENTITY_ENDPOINT and the Instance Metadata Service's.
const (
	AppServiceIdentityPath = "/msi/token"
	IMDSIdentityPath       = "/metadata/identity/oauth2/token"
)

// ManagedIdentity is a managed identity a ManagedIdentityEndpoint issues
// tokens for.
type ManagedIdentity struct {
	// ClientID is the identity's client id, which a request for a
	// user-assigned identity names.
	ClientID string
	// ObjectID is its object (principal) id, the sub and oid of its tokens,
	// which a FederatedCredential trusting it names as its Subject.
	ObjectID string
}

// ManagedIdentityOptions configures a ManagedIdentityEndpoint.
type ManagedIdentityOptions struct {
	// SystemAssigned is the identity of requests that name no client_id;
	// a zero value means the resource has none.
	SystemAssigned ManagedIdentity
	// UserAssigned are the identities requests may name by client_id.
	UserAssigned []ManagedIdentity
	// Header is the value of IDENTITY_HEADER that App Service style
	// requests must send as X-IDENTITY-HEADER; empty means a random one.
	Header string
	// TokenLifetime is the lifetime of the tokens; the default is 24 hours,
	// as for real managed identity tokens.
	TokenLifetime time.Duration
	// Latency delays every answer, so that requests overlap.
	Latency time.Duration
}

// The faults SetFault programs.
const (
	// MIFaultServerError answers 500.
	MIFaultServerError = "server_error"
	// MIFaultMalformed answers 200 with a body that is no token answer.
	MIFaultMalformed = "malformed"
	// MIFaultHang answers only when the client gives up.
	MIFaultHang = "hang"
)

// ManagedIdentityEndpoint is a loopback stand-in for the managed identity
// endpoints of Azure hosts: GET AppServiceIdentityPath (api-version
// 2019-08-01, header X-IDENTITY-HEADER, expires_on a string of unix
// seconds) and GET IMDSIdentityPath (api-version 2018-02-01, header
// Metadata: true, expires_in and expires_on strings). Its tokens are signed
// by the Server that started it, with iss = the Server's Issuer(), sub =
// oid = the identity's ObjectID and aud = the resource asked for, so that a
// FederatedCredential with TenantIssuer trusts them as client assertions.
// Unknown identities are answered 400 as the real endpoints answer them.
type ManagedIdentityEndpoint struct {
	idp      *Server
	opts     ManagedIdentityOptions
	srv      *http.Server
	baseURL  string
	requests atomic.Int64

	mu        sync.Mutex
	fault     string
	faultLeft int // -1: every request
	issued    []string
}

// StartManagedIdentityEndpoint starts a managed identity endpoint on a free
// loopback port, serving until Close.
func (s *Server) StartManagedIdentityEndpoint(opts ManagedIdentityOptions) (*ManagedIdentityEndpoint, error) {
	if opts.Header == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		opts.Header = hex.EncodeToString(b)
	}
	if opts.TokenLifetime == 0 {
		opts.TokenLifetime = 24 * time.Hour
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("localidp: managed identity endpoint: %w", err)
	}
	m := &ManagedIdentityEndpoint{idp: s, opts: opts, baseURL: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AppServiceIdentityPath, func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, false) })
	mux.HandleFunc("GET "+IMDSIdentityPath, func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, true) })
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = m.srv.Serve(ln) }()
	return m, nil
}

// AppServiceURL returns the value for IDENTITY_ENDPOINT.
func (m *ManagedIdentityEndpoint) AppServiceURL() string { return m.baseURL + AppServiceIdentityPath }

// IMDSURL returns the URL that stands for the Instance Metadata Service's
// http://169.254.169.254/metadata/identity/oauth2/token.
func (m *ManagedIdentityEndpoint) IMDSURL() string { return m.baseURL + IMDSIdentityPath }

// Header returns the value for IDENTITY_HEADER.
func (m *ManagedIdentityEndpoint) Header() string { return m.opts.Header }

// Requests returns the number of requests served, faults included.
func (m *ManagedIdentityEndpoint) Requests() int64 { return m.requests.Load() }

// IssuedTokens returns every token issued, oldest first.
func (m *ManagedIdentityEndpoint) IssuedTokens() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.issued...)
}

// SetFault makes the next n requests (every request when n is negative)
// fail with fault, one of the MIFault constants; "" clears it.
func (m *ManagedIdentityEndpoint) SetFault(fault string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fault, m.faultLeft = fault, n
}

// Close stops the endpoint; requests in progress fail.
func (m *ManagedIdentityEndpoint) Close() error { return m.srv.Close() }

func (m *ManagedIdentityEndpoint) nextFault() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fault == "" || m.faultLeft == 0 {
		return ""
	}
	if m.faultLeft > 0 {
		m.faultLeft--
	}
	return m.fault
}

func (m *ManagedIdentityEndpoint) serve(w http.ResponseWriter, r *http.Request, imds bool) {
	m.requests.Add(1)
	if m.opts.Latency > 0 {
		select {
		case <-time.After(m.opts.Latency):
		case <-r.Context().Done():
			return
		}
	}
	q := r.URL.Query()
	fail := func(status int, code, description string) {
		if imds {
			writeJSON(w, status, map[string]string{"error": code, "error_description": description})
			return
		}
		writeJSON(w, status, map[string]any{"statusCode": status, "message": description, "correlationId": newGUID()})
	}
	switch {
	case imds && r.Header.Get("Metadata") != "true":
		fail(http.StatusBadRequest, "invalid_request", "Required metadata header not specified")
		return
	case imds && q.Get("api-version") != "2018-02-01", !imds && q.Get("api-version") != "2019-08-01":
		fail(http.StatusBadRequest, "invalid_request", "Invalid or unsupported api-version "+strconv.Quote(q.Get("api-version")))
		return
	case !imds && r.Header.Get("X-IDENTITY-HEADER") != m.opts.Header:
		fail(http.StatusUnauthorized, "unauthorized", "The X-IDENTITY-HEADER is missing or does not match.")
		return
	case q.Get("resource") == "":
		fail(http.StatusBadRequest, "invalid_request", "Required query variable 'resource' is missing")
		return
	}
	switch m.nextFault() {
	case MIFaultServerError:
		fail(http.StatusInternalServerError, "unknown_error", "The managed identity service is temporarily unavailable.")
		return
	case MIFaultMalformed:
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>upstream connect error</body></html>"))
		return
	case MIFaultHang:
		<-r.Context().Done()
		return
	}
	id, ok := m.identity(q.Get("client_id"))
	if !ok {
		if imds {
			fail(http.StatusBadRequest, "invalid_request", "Identity not found")
		} else {
			fail(http.StatusBadRequest, "invalid_request", "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.")
		}
		return
	}
	tok, exp, err := m.issue(id, q.Get("resource"))
	if err != nil {
		fail(http.StatusInternalServerError, "unknown_error", err.Error())
		return
	}
	answer := map[string]any{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(exp.Unix(), 10),
		"resource":     q.Get("resource"),
		"token_type":   "Bearer",
		"client_id":    id.ClientID,
	}
	if imds {
		life := strconv.FormatInt(int64(time.Until(exp).Seconds()), 10)
		answer["expires_in"], answer["ext_expires_in"] = life, life
		answer["not_before"] = strconv.FormatInt(time.Now().Unix(), 10)
	}
	writeJSON(w, http.StatusOK, answer)
}

// identity returns the identity a request names by client id, or the
// system-assigned one.
func (m *ManagedIdentityEndpoint) identity(clientID string) (ManagedIdentity, bool) {
	if clientID == "" {
		return m.opts.SystemAssigned, m.opts.SystemAssigned.ObjectID != ""
	}
	for _, id := range m.opts.UserAssigned {
		if id.ClientID == clientID {
			return id, true
		}
	}
	return ManagedIdentity{}, false
}

func (m *ManagedIdentityEndpoint) issue(id ManagedIdentity, resource string) (string, time.Time, error) {
	if id.ObjectID == "" {
		return "", time.Time{}, errors.New("the identity has no object id")
	}
	now := time.Now()
	exp := now.Add(m.opts.TokenLifetime)
	tok, err := m.idp.SignClaims(map[string]any{
		"iss":   m.idp.Issuer(),
		"sub":   id.ObjectID,
		"oid":   id.ObjectID,
		"aud":   resource,
		"azp":   id.ClientID,
		"appid": id.ClientID,
		"tid":   m.idp.TenantID(),
		"idtyp": "app",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   exp.Unix(),
		"uti":   randomUTI(),
		"ver":   "2.0",
	})
	if err != nil {
		return "", time.Time{}, err
	}
	m.mu.Lock()
	m.issued = append(m.issued, tok)
	m.mu.Unlock()
	return tok, exp, nil
}
