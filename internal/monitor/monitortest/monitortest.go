// Package monitortest has test helpers for monitoring: targets that health checks probe.
package monitortest

import (
	"net"
	"testing"
)

// Listen serves a TCP listener on addr (such as "127.0.0.1:0") that accepts and closes every connection,
// until the test ends or the caller closes it (to take a target down).
func Listen(tb testing.TB, addr string) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	return ln
}
