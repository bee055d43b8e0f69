package config

import (
	"errors"
	"testing"
)

func TestRouteWebSocket(t *testing.T) {
	for _, tc := range []struct {
		data string
		want bool
	}{
		{minimal, false},
		{minimal + "    websocket: true\n", true},
		{minimal + "    websocket: false\n", false},
	} {
		c, err := Parse([]byte(tc.data), "test.yaml", testEnv)
		if err != nil {
			t.Fatal(err)
		}
		if got := bool(c.Routes[0].WebSocket); got != tc.want {
			t.Errorf("websocket = %v, want %v", got, tc.want)
		}
	}
	_, err := Parse([]byte(minimal+"    websocket: yes\n"), "test.yaml", testEnv)
	const want = `test.yaml:13: routes[0].websocket: must be true or false, not "yes"`
	var ps Problems
	if !errors.As(err, &ps) || err.Error() != want {
		t.Errorf("Parse() error =\n%v\nwant\n%s", err, want)
	}
}
