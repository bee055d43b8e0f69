package localidp

// SetNextBehavior programs the answer to the next n token requests that are
// otherwise valid (On-Behalf-Of, client credentials and token exchange, for
// any user), before SetUserBehavior and SetDefaultBehavior apply again: a
// passing fault, such as two 503 answers followed by normal service. It
// replaces what an earlier call left; n ≤ 0 clears it, as does
// ResetBehaviors.
func (s *Server) SetNextBehavior(n int, b Behavior) {
	s.behaviorMu.Lock()
	defer s.behaviorMu.Unlock()
	s.nextBehavior, s.nextCount = b, max(n, 0)
}

// MaxConcurrentTokenRequests returns the largest number of token requests
// the token endpoint has been serving at the same moment (including their
// SetLatency wait) since the server started or since
// ResetMaxConcurrentTokenRequests.
func (s *Server) MaxConcurrentTokenRequests() int64 { return s.maxTokenInFlight.Load() }

// ResetMaxConcurrentTokenRequests starts MaxConcurrentTokenRequests again
// from the number of requests being served now.
func (s *Server) ResetMaxConcurrentTokenRequests() {
	s.maxTokenInFlight.Store(s.tokenInFlight.Load())
}

// trackInFlight counts a token request as being served and returns the
// function that ends it.
func (s *Server) trackInFlight() func() {
	n := s.tokenInFlight.Add(1)
	for {
		m := s.maxTokenInFlight.Load()
		if n <= m || s.maxTokenInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { s.tokenInFlight.Add(-1) }
}
