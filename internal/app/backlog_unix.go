//go:build unix

package app

import (
	"fmt"
	"net"
	"syscall"
	"time"
)

// shrinkBacklog makes ln's accept queue hold a single connection: listen
// again with a backlog of zero, which only changes the limit.
func shrinkBacklog(ln *net.TCPListener) error {
	rc, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil {
		return err
	}
	return lerr
}

// dialPlug connects to addr (a loopback address) before deadline from a
// port it binds first, and passes that local address to bound before it
// connects, so that the listener knows the connection when it takes it.
func dialPlug(addr string, deadline time.Time, bound func(local string)) (net.Conn, error) {
	d := net.Dialer{Deadline: deadline, Control: func(network, _ string, c syscall.RawConn) error {
		var berr error
		err := c.Control(func(fd uintptr) {
			var sa syscall.Sockaddr = &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
			if network == "tcp6" {
				sa = &syscall.SockaddrInet6{Addr: [16]byte{15: 1}}
			}
			if berr = syscall.Bind(int(fd), sa); berr != nil {
				return
			}
			got, gerr := syscall.Getsockname(int(fd))
			switch a := got.(type) {
			case *syscall.SockaddrInet4:
				bound((&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String())
			case *syscall.SockaddrInet6:
				bound((&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String())
			default:
				berr = fmt.Errorf("app: plug bound to %v (%v)", got, gerr)
			}
		})
		if err != nil {
			return err
		}
		return berr
	}}
	return d.Dial("tcp", addr)
}
