package localidp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// serve starts a new HTTP server on ln in the background. s.srvMu must be
// held.
func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		TLSConfig:         s.tlsConfig,
	}
	served := make(chan struct{})
	s.srv, s.served = srv, served
	go func() {
		defer close(served)
		serve := srv.Serve
		if s.tlsConfig != nil {
			serve = func(l net.Listener) error { return srv.ServeTLS(l, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("localidp: serve", "error", err)
		}
	}()
}

// Kill stops serving at once, like a crashed authority: the listener and
// every connection are closed, so requests in progress fail and new ones
// are refused. Keys, behaviours, counters and records are kept, and
// Restart serves again on the same address. Killing a killed server does
// nothing.
func (s *Server) Kill() error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	<-s.served
	s.srv = nil
	if err != nil {
		return fmt.Errorf("localidp: kill: %w", err)
	}
	return nil
}

// Restart listens again on the address the server first listened on (so
// BaseURL and every URL stay valid) after Kill, with the same keys and
// state. Restarting a running server does nothing; a closed server cannot
// be restarted.
func (s *Server) Restart() error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	select {
	case <-s.done:
		return errors.New("localidp: restart: the server is closed")
	default:
	}
	if s.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("localidp: restart: listen %s: %w", s.addr, err)
	}
	s.serve(ln)
	s.logger.Info("localidp: listening again", "base_url", s.baseURL)
	return nil
}

// dialableAddr turns a listener address into a host:port a client can dial:
// an unspecified IP (0.0.0.0 or ::) becomes 127.0.0.1.
func dialableAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}

// Close stops the server: it closes the listener and every connection,
// releases token requests blocked by SetHang or SetLatency, and waits for
// the serving goroutine to finish. Calling Close again returns the first
// result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.srvMu.Lock()
		defer s.srvMu.Unlock()
		close(s.done)
		if s.srv != nil {
			s.closeErr = s.srv.Close()
			<-s.served
			s.srv = nil
		}
	})
	return s.closeErr
}
