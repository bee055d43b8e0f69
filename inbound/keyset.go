package inbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/singleflight"
)

// ErrUnknownKey is returned by KeySet.Key when the authority publishes no
// key with the requested id, even after a refetch.
var ErrUnknownKey = errors.New("no published key has this id")

// ErrKeysUnavailable is returned by KeySet.Key while no key set has been
// fetched yet.
var ErrKeysUnavailable = errors.New("the authority's key set has not been fetched")

// KeySetConfig configures a KeySet.
type KeySetConfig struct {
	// URL is the authority's jwks_uri. Required.
	URL string
	// HTTPClient fetches the key set; it should carry a timeout. Required.
	HTTPClient *http.Client
	// Refresh is the background refresh interval. Zero means
	// DefaultKeyRefresh.
	Refresh time.Duration
	// MinRefetch is the least time between two refetches caused by an
	// unknown key id, so that tokens with random "kid"s cannot make the
	// gateway hammer the authority. Zero means DefaultMinRefetch.
	MinRefetch time.Duration
	// OnFetch, when set, is called after every fetch of the key set with
	// nil, or with why the fetched set was not taken: a transport error, a
	// status other than 200, a body that is not a key set, or a set
	// without any usable signing key (ErrNoSigningKeys).
	OnFetch func(err error)
	// TracerProvider makes the span of each refetch a token with an
	// unknown key id causes, in that request's trace; nil means none.
	TracerProvider trace.TracerProvider
}

// ErrNoSigningKeys is reported to KeySetConfig.OnFetch for a fetched key set
// that holds no key able to verify a token A's signature (an empty set, or
// only encryption or symmetric keys): such a set is not taken, as it would
// lock every user out, and the last good set stays.
var ErrNoSigningKeys = errors.New("the key set holds no usable signing key")

// Defaults of KeySetConfig.
const (
	DefaultKeyRefresh = time.Hour
	DefaultMinRefetch = 30 * time.Second
)

// KeySet is the authority's signing keys, held and refreshed in the
// background by an httprc client parsing the set with jwx, which keeps the
// last good set when a refresh fails; a set without a usable signing key
// counts as a failed refresh. A set that withdraws some keys is taken. A token signed with a key id the set does not hold causes
// one immediate refetch (at most one per MinRefetch, shared by the requests
// that wait for it), so a key rollover fails no request.
type KeySet struct {
	ctrl       httprc.Controller
	res        *httprc.ResourceBase[jwk.Set]
	minRefetch time.Duration
	cancel     context.CancelFunc
	ctx        context.Context
	tracer     trace.Tracer

	refetches   singleflight.Group
	mu          sync.Mutex // guards lastRefetch and the change of gen
	lastRefetch time.Time
	gen         atomic.Pointer[generation]
}

// generation numbers one key set the KeySet has held.
type generation struct {
	set jwk.Set
	n   uint64
}

// NewKeySet starts fetching cfg.URL in the background; it does not wait
// for the first fetch (see Ready). Close stops it; so does the end of ctx.
func NewKeySet(ctx context.Context, cfg KeySetConfig) (*KeySet, error) {
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultKeyRefresh
	}
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = DefaultMinRefetch
	}
	onFetch := cfg.OnFetch
	if onFetch == nil {
		onFetch = func(error) {}
	}
	hc := *cfg.HTTPClient
	hc.Transport = observedTransport{next: cmpTransport(hc.Transport), onFetch: onFetch}
	ctx, cancel := context.WithCancel(ctx)
	res, err := httprc.NewResource[jwk.Set](cfg.URL, signingKeys{onFetch: onFetch}, httprc.WithHTTPClient(&hc),
		httprc.WithConstantInterval(cfg.Refresh), httprc.WithMinInterval(cfg.MinRefetch))
	var ctrl httprc.Controller
	if err == nil {
		ctrl, err = httprc.NewClient().Start(ctx)
	}
	if err == nil {
		err = ctrl.Add(ctx, res, httprc.WithWaitReady(false))
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("inbound: key set %s: %w", cfg.URL, err)
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return &KeySet{ctrl: ctrl, res: res, minRefetch: cfg.MinRefetch, ctx: ctx, cancel: cancel,
		tracer: tp.Tracer("github.com/obo-gateway/obo-gateway/inbound")}, nil
}

// Close stops the background refresh.
func (k *KeySet) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := k.ctrl.ShutdownContext(ctx)
	k.cancel()
	return err
}

// Ready reports whether a key set has been fetched.
func (k *KeySet) Ready(context.Context) bool { return k.res.Resource() != nil }

// Len returns the number of keys in the current set, or 0 before the first
// fetch.
func (k *KeySet) Len() int {
	if set := k.res.Resource(); set != nil {
		return set.Len()
	}
	return 0
}

// Key returns the published key with id kid. An empty kid selects the only
// signature key of the set.
func (k *KeySet) Key(ctx context.Context, kid string) (jwk.Key, error) {
	if key, ok := lookup(k.res.Resource(), kid); ok {
		return key, nil
	}
	_, span := k.tracer.Start(ctx, "jwks refetch")
	outcome := k.refetch()
	span.SetAttributes(attribute.String("obo_gateway.outcome", outcome))
	span.End()
	// Whether this call's refetch ran, joined one or was refused, the set is
	// looked at again: a refetch may have finished since the first look.
	set := k.res.Resource()
	if key, ok := lookup(set, kid); ok {
		return key, nil
	}
	if set == nil {
		return nil, ErrKeysUnavailable
	}
	return nil, ErrUnknownKey
}

// refetch fetches the key set now, unless one was fetched for an unknown key
// less than MinRefetch ago; calls arriving while it runs wait for it. It
// returns what happened: "fetched", "failed" or "limited" (not fetched).
func (k *KeySet) refetch() string {
	outcome, _, _ := k.refetches.Do("", func() (any, error) {
		k.mu.Lock()
		allowed := time.Since(k.lastRefetch) >= k.minRefetch
		if allowed {
			k.lastRefetch = time.Now()
		}
		k.mu.Unlock()
		if !allowed {
			return "limited", nil
		}
		ctx, cancel := context.WithTimeout(k.ctx, 30*time.Second)
		defer cancel()
		if err := k.ctrl.Refresh(ctx, k.res.URL()); err != nil {
			return "failed", err
		}
		return "fetched", nil
	})
	return outcome.(string)
}

// Published reports whether the current set holds signature key kid, and
// the set's generation.
func (k *KeySet) Published(kid string) (generation uint64, ok bool) {
	g := k.current()
	if g == nil {
		return 0, false
	}
	_, ok = lookup(g.set, kid)
	return g.n, ok
}

// Generation numbers the key sets the KeySet has held: 0 before the first
// fetch, then one more each time a fetched set replaces the current one. A
// key that Published found in generation g is still published while
// Generation returns g.
func (k *KeySet) Generation() uint64 {
	if g := k.current(); g != nil {
		return g.n
	}
	return 0
}

// current returns the generation of the set the JWKS cache holds now.
func (k *KeySet) current() *generation {
	set := k.res.Resource()
	if g := k.gen.Load(); g == nil && set == nil || g != nil && g.set == set {
		return g
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	g := k.gen.Load()
	// Read again under the lock, so a slow caller never installs a set
	// older than one installed meanwhile.
	if set = k.res.Resource(); g != nil && g.set == set {
		return g
	}
	next := &generation{set: set, n: 1}
	if g != nil {
		next.n = g.n + 1
	}
	k.gen.Store(next)
	return next
}

// lookup returns the signature key of set with id kid, or its only
// signature key when kid is empty.
func lookup(set jwk.Set, kid string) (jwk.Key, bool) {
	if set == nil {
		return nil, false
	}
	var only jwk.Key
	n := 0
	for i := range set.Len() {
		key, _ := set.Key(i)
		if !forSignatures(key) {
			continue
		}
		if id, _ := key.KeyID(); kid != "" && id == kid {
			return key, true
		}
		only, n = key, n+1
	}
	return only, kid == "" && n == 1
}

// forSignatures reports whether key may verify signatures: keys published
// for encryption ("use":"enc") or without the "verify" operation may not.
func forSignatures(key jwk.Key) bool {
	if use, ok := key.KeyUsage(); ok && use != "" && use != "sig" {
		return false
	}
	if ops, ok := key.KeyOps(); ok && len(ops) > 0 {
		return slices.Contains(ops, jwk.KeyOpVerify)
	}
	return true
}

// signingKeys parses a fetched key set with jwx and refuses a set without a
// usable signing key, so that the last good set stays. It reports the
// outcome of each fetch answered with status 200.
type signingKeys struct{ onFetch func(error) }

func (t signingKeys) Transform(ctx context.Context, res *http.Response) (jwk.Set, error) {
	set, err := jwk.Transformer{}.Transform(ctx, res)
	if err == nil && !slices.ContainsFunc(keysOf(set), usable) {
		err = ErrNoSigningKeys
	}
	t.onFetch(err)
	return set, err
}

// keysOf returns the keys of set.
func keysOf(set jwk.Set) []jwk.Key {
	keys := make([]jwk.Key, 0, set.Len())
	for i := range set.Len() {
		if key, ok := set.Key(i); ok {
			keys = append(keys, key)
		}
	}
	return keys
}

// usable reports whether key can verify a token A: a public key of a type
// the gateway accepts (HMAC keys never are), published for signatures.
func usable(key jwk.Key) bool {
	switch key.KeyType() {
	case jwa.RSA(), jwa.EC(), jwa.OKP():
		return forSignatures(key)
	}
	return false
}

// observedTransport reports the fetches that fail before their body is
// parsed: transport errors and statuses other than 200 (signingKeys reports
// the others).
type observedTransport struct {
	next    http.RoundTripper
	onFetch func(error)
}

func (t observedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(r)
	switch {
	case err != nil:
		t.onFetch(err)
	case res.StatusCode != http.StatusOK:
		t.onFetch(fmt.Errorf("status %d", res.StatusCode))
	}
	return res, err
}

// cmpTransport returns rt, or http.DefaultTransport when rt is nil.
func cmpTransport(rt http.RoundTripper) http.RoundTripper {
	if rt != nil {
		return rt
	}
	return http.DefaultTransport
}
