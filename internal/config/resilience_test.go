package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// withAuthority returns minimal with lines added under authority:, each
// written without indentation.
func withAuthority(lines ...string) string {
	const url = "  url: https://login.microsoftonline.com/tenant/v2.0\n"
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	return strings.Replace(minimal, url, url+b.String(), 1)
}

func TestAuthorityResilienceKeys(t *testing.T) {
	type settings struct {
		retries, failures, maxExchanges int
		openFor, queueTimeout           time.Duration
	}
	tests := []struct {
		name  string
		lines []string
		env   map[string]string
		want  settings
	}{
		{name: "defaults", want: settings{retries: 2, failures: 5, openFor: 30 * time.Second, maxExchanges: 32, queueTimeout: 2 * time.Second}},
		{
			name:  "values set",
			lines: []string{"retries: 5", "breaker: {failures: 3, open_for: 1s}", "max_concurrent_exchanges: 4", "queue_timeout: 500ms"},
			want:  settings{retries: 5, failures: 3, openFor: time.Second, maxExchanges: 4, queueTimeout: 500 * time.Millisecond},
		},
		{
			name:  "explicit zeros are kept: no retries, no breaker, no bound, no wait",
			lines: []string{"retries: 0", "breaker:", "  failures: 0", "max_concurrent_exchanges: 0", "queue_timeout: 0s"},
			want:  settings{retries: 0, failures: 0, openFor: 30 * time.Second, maxExchanges: 0, queueTimeout: 0},
		},
		{
			name:  "numbers from the environment",
			lines: []string{"retries: ${RETRIES}", "max_concurrent_exchanges: \"${MAX}\""},
			env:   map[string]string{"RETRIES": "1", "MAX": "8"},
			want:  settings{retries: 1, failures: 5, openFor: 30 * time.Second, maxExchanges: 8, queueTimeout: 2 * time.Second},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"OBO_CLIENT_SECRET": "s3cr3t"}
			for k, v := range tc.env {
				env[k] = v
			}
			a := mustParse(t, withAuthority(tc.lines...), envMap(env)).Authority
			got := settings{a.Retries, a.Breaker.Failures, a.MaxConcurrentExchanges, a.Breaker.OpenFor.D(), a.QueueTimeout.D()}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAuthorityResilienceProblems(t *testing.T) {
	tests := []struct {
		name    string
		lines   []string
		key     string
		message string
	}{
		{"too many retries", []string{"retries: 6"}, "authority.retries", "must be between 0 and 5 (0 turns retries off), not 6"},
		{"negative retries", []string{"retries: -1"}, "authority.retries", "must be between 0 and 5 (0 turns retries off), not -1"},
		{"retries not a number", []string{"retries: two"}, "authority.retries", `"two" must be a whole number, such as 5`},
		{"retries a fraction", []string{"retries: 1.5"}, "authority.retries", `"1.5" must be a whole number, such as 5`},
		{"retries a list", []string{"retries: [1]"}, "authority.retries", "must be a whole number, not a list"},
		{"breaker failures too many", []string{"breaker: {failures: 1001}"}, "authority.breaker.failures", "must be between 0 and 1000 (0 turns the breaker off), not 1001"},
		{"breaker open for zero", []string{"breaker: {failures: 3, open_for: 0s}"}, "authority.breaker.open_for", "must be positive and at most 1h, not 0s"},
		{"breaker open for too long", []string{"breaker: {open_for: 2h}"}, "authority.breaker.open_for", "must be positive and at most 1h, not 2h0m0s"},
		{"breaker key misspelt", []string{"breaker: {failure: 3}"}, "authority.breaker.failure", `unknown key (did you mean "failures"?)`},
		{"breaker not a mapping", []string{"breaker: 5"}, "authority.breaker", "must be a mapping of keys to values, not a scalar"},
		{"negative concurrency", []string{"max_concurrent_exchanges: -1"}, "authority.max_concurrent_exchanges", "must be between 0 and 10000 (0 means no bound), not -1"},
		{"too much concurrency", []string{"max_concurrent_exchanges: 10001"}, "authority.max_concurrent_exchanges", "must be between 0 and 10000 (0 means no bound), not 10001"},
		{"negative queue timeout", []string{"queue_timeout: -1s"}, "authority.queue_timeout", "must be between 0s and 1m, not -1s"},
		{"long queue timeout", []string{"queue_timeout: 2m"}, "authority.queue_timeout", "must be between 0s and 1m, not 2m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(withAuthority(tc.lines...)), "test.yaml", testEnv)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("err = %v, want Problems", err)
			}
			for _, p := range ps {
				if p.Key == tc.key && p.Message == tc.message {
					if p.Line != 3 {
						t.Errorf("problem on line %d, want 3", p.Line)
					}
					return
				}
			}
			t.Errorf("problems:\n%v\nwant %s: %s", err, tc.key, tc.message)
		})
	}
}

func TestValidateBreakerOffIgnoresOpenFor(t *testing.T) {
	c := validConfig()
	c.Authority.Breaker = Breaker{}
	if err := c.Validate(); err != nil {
		t.Errorf("breaker off with no open_for: %v", err)
	}
}
