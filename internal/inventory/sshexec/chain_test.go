package sshexec_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/inventory/sshtest"
)

// chainServers starts client → jump1 (127.0.0.2) → jump2 (127.0.0.3) →
// target (127.0.0.4), each its own sshd. Jump hosts log at DEBUG1, which
// records every forwarded connection.
func chainServers(t *testing.T) (jump1, jump2, dst *sshtest.Server) {
	t.Helper()
	jump := sshtest.Options{AllowTCPForwarding: true, LogLevel: "DEBUG1"}
	jump.Addr = "127.0.0.2"
	jump1 = sshtest.Start(t, jump)
	jump.Addr = "127.0.0.3"
	jump2 = sshtest.Start(t, jump)
	dst = sshtest.Start(t, sshtest.Options{Addr: "127.0.0.4"})
	return jump1, jump2, dst
}

func TestChain(t *testing.T) {
	t.Parallel()

	// Ensure a two-jump chain is actually traversed: the target is reached
	// from jump2, jump2 from jump1, and only jump1 from the client.
	t.Run("TwoHops", func(t *testing.T) {
		t.Parallel()
		jump1, jump2, dst := chainServers(t)
		e := newExecutor(t, sshexec.Config{})
		res := mustRun(t, e, target(jump1.Hop(), jump2.Hop(), dst.Hop()), "echo $SSH_CONNECTION")
		// SSH_CONNECTION = client-ip client-port server-ip server-port.
		f := strings.Fields(res.Stdout)
		if len(f) != 4 || f[2] != "127.0.0.4" || f[3] != fmt.Sprint(dst.Port) {
			t.Fatalf("SSH_CONNECTION %q", res.Stdout)
		}
		ctx := ctxTimeout(t)
		for _, c := range []struct {
			srv  *sshtest.Server
			want string
		}{
			{jump1, fmt.Sprintf("target %s port %d", jump2.Addr, jump2.Port)},
			{jump2, fmt.Sprintf("target %s port %d", dst.Addr, dst.Port)},
		} {
			if err := c.srv.WaitLog(ctx, "server_request_direct_tcpip: originator", 1); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(c.srv.Log(), c.want) {
				t.Fatalf("%s forwarded elsewhere; want %q in log:\n%s", c.srv.HostPort(), c.want, c.srv.Log())
			}
		}
		// The target's peer is jump2's sshd: its source port is the one
		// jump2 opened, and the target saw exactly one connection.
		if err := dst.WaitLog(ctx, "Connection from 127.0.0.1 port "+f[1]+" on 127.0.0.4", 1); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*sshtest.Server{jump1, jump2, dst} {
			if n := s.CountLog("Connection from"); n != 1 {
				t.Fatalf("%s saw %d connections, want 1", s.HostPort(), n)
			}
		}

		// Check walks the same chain on fresh connections.
		results := e.Check(ctx, target(jump1.Hop(), jump2.Hop(), dst.Hop()))
		for _, r := range results {
			if !r.OK || r.Latency <= 0 {
				t.Fatalf("Check = %+v", results)
			}
		}
	})

	// Ensure targets behind the same jump hosts share the jump connections.
	t.Run("SharedJump", func(t *testing.T) {
		t.Parallel()
		jump := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.2", AllowTCPForwarding: true})
		dsts := sshtest.StartMany(t, 3, sshtest.Options{Addr: "127.0.0.5"})
		e := newExecutor(t, sshexec.Config{})
		targets := make([]sshexec.Target, len(dsts))
		for i, d := range dsts {
			targets[i] = target(jump.Hop(), d.Hop())
		}
		var mu sync.Mutex
		ok := 0
		e.FanOut(ctxTimeout(t), targets, sshexec.Command{Cmd: "true"}, 3, func(i int, r sshexec.Result, err error) {
			if err != nil || r.ExitCode != 0 {
				t.Errorf("target %d: %s, %v", i, fmtResult(r), err)
			}
			mu.Lock()
			ok++
			mu.Unlock()
		})
		if ok != len(dsts) {
			t.Fatalf("%d results", ok)
		}
		if n := jump.CountLog("Connection from"); n != 1 {
			t.Fatalf("jump host saw %d connections, want 1", n)
		}
	})

	// Ensure Check and Run name the hop and stage that failed.
	t.Run("FailedHop", func(t *testing.T) {
		t.Parallel()
		jump1, jump2, dst := chainServers(t)
		e := newExecutor(t, sshexec.Config{})
		closedPort := func() int {
			l, err := net.Listen("tcp", "127.0.0.4:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			return l.Addr().(*net.TCPAddr).Port
		}()
		_, otherPub := newKeyPEM(t)
		otherKey, _ := newKeyPEM(t)
		tests := []struct {
			name      string
			hops      func() []sshexec.Hop
			wantHop   int
			wantStage sshexec.Stage
		}{
			{"TCPViaJump", func() []sshexec.Hop {
				d := dst.Hop()
				d.Port = closedPort
				return []sshexec.Hop{jump1.Hop(), jump2.Hop(), d}
			}, 2, sshexec.StageTCP},
			{"HostKeyOnJump", func() []sshexec.Hop {
				j := jump2.Hop()
				j.HostKey = otherPub
				return []sshexec.Hop{jump1.Hop(), j, dst.Hop()}
			}, 1, sshexec.StageHostKey},
			{"AuthOnTarget", func() []sshexec.Hop {
				d := dst.Hop()
				d.Auth = sshexec.Auth{PrivateKey: otherKey}
				return []sshexec.Hop{jump1.Hop(), jump2.Hop(), d}
			}, 2, sshexec.StageAuth},
			{"DNS", func() []sshexec.Hop {
				j := jump1.Hop()
				j.Host = "nonexistent.invalid"
				return []sshexec.Hop{j, jump2.Hop(), dst.Hop()}
			}, 0, sshexec.StageDNS},
			{"TCPDirect", func() []sshexec.Hop {
				d := dst.Hop()
				d.Port = closedPort
				return []sshexec.Hop{d}
			}, 0, sshexec.StageTCP},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				hops := tc.hops()
				results := e.Check(ctxTimeout(t), sshexec.Target{Hops: hops})
				for i, r := range results {
					switch {
					case i < tc.wantHop && !r.OK,
						i == tc.wantHop && (r.OK || r.Stage != tc.wantStage || r.Error == ""),
						i > tc.wantHop && (r.OK || r.Stage != ""):
						t.Fatalf("Check = %+v", results)
					}
				}
				_, err := e.Run(ctxTimeout(t), sshexec.Target{Hops: hops}, sshexec.Command{Cmd: "true"})
				var he *sshexec.HopError
				if !errors.As(err, &he) || he.Hop != tc.wantHop || he.Stage != tc.wantStage || he.ServerID != hops[tc.wantHop].ServerID {
					t.Fatalf("Run err = %v, want %s at hop %d", err, tc.wantStage, tc.wantHop)
				}
			})
		}
	})
}
