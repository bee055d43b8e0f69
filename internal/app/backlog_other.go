//go:build !unix

package app

import (
	"errors"
	"net"
	"time"
)

// shrinkBacklog is not available here: the listener closes at once.
func shrinkBacklog(*net.TCPListener) error {
	return errors.New("app: the accept queue cannot be shrunk on this system")
}

// dialPlug is not used here.
func dialPlug(string, time.Time, func(string)) (net.Conn, error) {
	return nil, errors.ErrUnsupported
}
