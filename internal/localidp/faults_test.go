package localidp

import (
	"sync"
	"testing"
	"time"
)

func TestSetNextBehavior(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		want  []int // statuses of consecutive requests
		setup func(*Server)
	}{
		{name: "two server errors then normal", n: 2, want: []int{503, 503, 200, 200}},
		{name: "zero clears", n: 0, want: []int{200}},
		{name: "takes precedence over the default, which applies after", n: 1, want: []int{503, 400, 400},
			setup: func(s *Server) { s.SetDefaultBehavior(Behavior{Kind: BehaviorMFA}) }},
		{name: "takes precedence over a user behaviour", n: 1, want: []int{503, 400},
			setup: func(s *Server) { s.SetUserBehavior(userOID, Behavior{Kind: BehaviorInteractionRequired}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t)
			if tc.setup != nil {
				tc.setup(s)
			}
			s.SetNextBehavior(tc.n, Behavior{Kind: BehaviorServerError})
			for i, want := range tc.want {
				if a := post(t, s, oboForm(userToken(t, s, UserToken{ObjectID: userOID}), graphScope)); a.status != want {
					t.Errorf("request %d: %d, want %d", i+1, a.status, want)
				}
			}
		})
	}
}

func TestNextBehaviorSkipsInvalidRequestsAndResets(t *testing.T) {
	s := newTestServer(t)
	s.SetNextBehavior(1, Behavior{Kind: BehaviorThrottle})
	if a := post(t, s, with1(oboForm(userToken(t, s, UserToken{}), graphScope), "client_secret", "nope")); a.status != 401 {
		t.Errorf("invalid request: %d, want 401", a.status)
	}
	if a := post(t, s, ccForm("api://api-b/.default")); a.status != 429 {
		t.Errorf("first valid request: %d, want 429", a.status)
	}
	s.SetNextBehavior(5, Behavior{Kind: BehaviorThrottle})
	s.ResetBehaviors()
	if a := post(t, s, ccForm("api://api-b/.default")); a.status != 200 {
		t.Errorf("after ResetBehaviors: %d, want 200", a.status)
	}
}

func TestMaxConcurrentTokenRequests(t *testing.T) {
	s := newTestServer(t)
	if n := s.MaxConcurrentTokenRequests(); n != 0 {
		t.Fatalf("before any request: %d", n)
	}
	s.SetLatency(150 * time.Millisecond)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if a, err := request(s, "POST", ccForm("api://api-b/.default"), nil); err != nil || a.status != 200 {
				t.Errorf("request: %v %d", err, a.status)
			}
		})
	}
	wg.Wait()
	if n := s.MaxConcurrentTokenRequests(); n != 3 {
		t.Errorf("3 concurrent slow requests: max %d", n)
	}
	s.ResetMaxConcurrentTokenRequests()
	s.SetLatency(0)
	post(t, s, ccForm("api://api-b/.default"))
	if n := s.MaxConcurrentTokenRequests(); n != 1 {
		t.Errorf("after reset and one request: max %d", n)
	}
}
