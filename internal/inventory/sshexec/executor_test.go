package sshexec_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/inventory/sshtest"
)

func TestRun(t *testing.T) {
	t.Parallel()

	// Ensure key auth runs a command and reports stdout, stderr and the
	// exit code, streaming lines in order.
	t.Run("KeyAuth", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{})
		l := newLines()
		res, err := e.Run(ctxTimeout(t), target(srv.Hop()), sshexec.Command{
			Cmd:    "echo one; echo two; echo oops >&2; printf 'no newline'; exit 3",
			OnLine: l.onLine,
		})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.ExitCode != 3 || res.Stdout != "one\ntwo\nno newline" || res.Stderr != "oops\n" || res.Truncated || res.TimedOut {
			t.Fatalf("result %s", fmtResult(res))
		}
		var stdout []string
		for _, s := range l.all() {
			if line, ok := strings.CutPrefix(s, "stdout:"); ok {
				stdout = append(stdout, line)
			}
		}
		if strings.Join(stdout, "|") != "one|two|no newline" {
			t.Fatalf("stdout lines %q", stdout)
		}
		if res.Duration <= 0 {
			t.Fatalf("duration %v", res.Duration)
		}
	})

	// Ensure the wrapper keeps shell syntax intact (here-documents,
	// multi-line scripts, quotes) and gives the command an empty stdin, so a
	// command reading stdin does not hang.
	t.Run("ShellSyntax", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{})
		res := mustRun(t, e, target(srv.Hop()), "cat <<EOF\nx $((1+1))\nEOF\nif true; then\n  echo 'a  b'\nfi\ncat; echo \"stdin done\"")
		if res.Stdout != "x 2\na  b\nstdin done\n" || res.ExitCode != 0 {
			t.Fatalf("result %s", fmtResult(res))
		}
	})

	// Ensure password auth works for a non-root user whose login shell is
	// sh, and that the command runs as that user.
	t.Run("PasswordAuth", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{Password: true})
		e := newExecutor(t, sshexec.Config{})
		hop := srv.Hop()
		hop.User = srv.PasswordUser
		hop.Auth = sshexec.Auth{Password: srv.Password}
		res := mustRun(t, e, target(hop), "id -un")
		if strings.TrimSpace(res.Stdout) != srv.PasswordUser {
			t.Fatalf("ran as %q", res.Stdout)
		}
		if err := srv.WaitLog(ctxTimeout(t), "Accepted password for "+srv.PasswordUser, 1); err != nil {
			t.Fatal(err)
		}
	})

	// Ensure a wrong key and a wrong password fail at the auth stage.
	t.Run("ErrWrongCredentials", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{Password: true})
		e := newExecutor(t, sshexec.Config{})
		otherKey, _ := newKeyPEM(t)
		tests := []struct {
			name string
			hop  func(h sshexec.Hop) sshexec.Hop
		}{
			{"WrongKey", func(h sshexec.Hop) sshexec.Hop { h.Auth = sshexec.Auth{PrivateKey: otherKey}; return h }},
			{"WrongPassword", func(h sshexec.Hop) sshexec.Hop {
				h.User, h.Auth = srv.PasswordUser, sshexec.Auth{Password: "not-the-password"}
				return h
			}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				_, err := e.Run(ctxTimeout(t), target(tc.hop(srv.Hop())), sshexec.Command{Cmd: "true"})
				var he *sshexec.HopError
				if !errors.As(err, &he) || he.Stage != sshexec.StageAuth || he.Hop != 0 {
					t.Fatalf("err = %v, want auth HopError on hop 0", err)
				}
			})
		}
	})

	// Ensure a server presenting another key than the stored one is refused,
	// reported to OnHostKeyMismatch, and never runs the command.
	t.Run("ErrHostKeyMismatch", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		_, otherPub := newKeyPEM(t)
		var mu sync.Mutex
		var calls [][3]string
		e := newExecutor(t, sshexec.Config{OnHostKeyMismatch: func(id, want, got string) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, [3]string{id, want, got})
		}})
		hop := srv.Hop()
		hop.HostKey = otherPub
		hop.HostKeyPolicy = sshexec.PolicyTOFU // a stored key is never overridden by TOFU
		_, err := e.Run(ctxTimeout(t), target(hop), sshexec.Command{Cmd: "touch /nonexistent-should-not-run"})
		var he *sshexec.HopError
		if !errors.Is(err, sshexec.ErrHostKeyMismatch) || !errors.As(err, &he) || he.Stage != sshexec.StageHostKey {
			t.Fatalf("err = %v, want hostkey HopError wrapping ErrHostKeyMismatch", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(calls) != 1 || calls[0] != [3]string{hop.ServerID, otherPub, srv.HostKey} {
			t.Fatalf("OnHostKeyMismatch calls %q", calls)
		}
		if n := srv.CountLog("Accepted "); n != 0 {
			t.Fatalf("server accepted a login despite the mismatch")
		}
	})

	// Ensure trust on first use learns the key only under the tofu policy.
	t.Run("TOFU", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		learned := make(chan [2]string, 1)
		e := newExecutor(t, sshexec.Config{OnHostKeyLearned: func(id, key string) { learned <- [2]string{id, key} }})
		hop := srv.Hop()
		hop.HostKey = ""

		hop.HostKeyPolicy = sshexec.PolicyPin
		if _, err := e.Run(ctxTimeout(t), target(hop), sshexec.Command{Cmd: "true"}); !errors.Is(err, sshexec.ErrHostKeyUnknown) {
			t.Fatalf("pin without key: err = %v, want ErrHostKeyUnknown", err)
		}
		hop.HostKeyPolicy = sshexec.PolicyTOFU
		mustRun(t, e, target(hop), "true")
		select {
		case got := <-learned:
			if got != [2]string{hop.ServerID, srv.HostKey} {
				t.Fatalf("learned %q, want %q", got, srv.HostKey)
			}
		default:
			t.Fatal("OnHostKeyLearned not called")
		}
		// The caller now stores the key: it is checked from then on.
		hop.HostKey = srv.HostKey
		mustRun(t, e, target(hop), "true")
		_, otherPub := newKeyPEM(t)
		hop.HostKey = otherPub
		if _, err := e.Run(ctxTimeout(t), target(hop), sshexec.Command{Cmd: "true"}); !errors.Is(err, sshexec.ErrHostKeyMismatch) {
			t.Fatalf("after re-pinning: err = %v, want ErrHostKeyMismatch", err)
		}
	})

	// Ensure a timed-out command is killed on the server, background
	// children included, both for root (OpenSSH 9.2 refuses signal requests
	// on root sessions: "session signalling requires privilege separation",
	// so the stdin watcher does it) and for an ordinary user (the signal
	// request does it).
	t.Run("TimeoutKillsRemoteProcess", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{Password: true})
		e := newExecutor(t, sshexec.Config{})
		user := srv.Hop()
		user.User, user.Auth = srv.PasswordUser, sshexec.Auth{Password: srv.Password}
		for _, tc := range []struct {
			name string
			hop  sshexec.Hop
		}{{"Root", srv.Hop()}, {"User", user}} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				l := newLines()
				res, err := e.Run(ctxTimeout(t), target(tc.hop), sshexec.Command{
					Cmd:     "echo pid:$$; sleep 3001 & echo pid:$!; sleep 3002",
					Timeout: 500 * time.Millisecond,
					OnLine:  l.onLine,
				})
				if !errors.Is(err, sshexec.ErrTimeout) || !res.TimedOut || res.ExitCode != -1 {
					t.Fatalf("Run = %s, %v; want ErrTimeout", fmtResult(res), err)
				}
				pids := l.pids()
				if len(pids) != 2 {
					t.Fatalf("pids %v", pids)
				}
				waitGone(t, pids...)
				// The connection survives for the next command.
				mustRun(t, e, target(tc.hop), "true")
			})
		}
	})

	// Ensure cancelling the context mid-stream stops the command and kills
	// the remote process.
	t.Run("CancelMidStream", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{})
		ctx, cancel := context.WithCancel(ctxTimeout(t))
		defer cancel()
		l := newLines()
		done := make(chan error, 1)
		go func() {
			_, err := e.Run(ctx, target(srv.Hop()), sshexec.Command{
				Cmd:    "echo pid:$$; i=0; while :; do echo line $i; i=$((i+1)); sleep 0.02; done",
				OnLine: l.onLine,
			})
			done <- err
		}()
		l.wait(t, 4)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Run did not return after cancel")
		}
		waitGone(t, l.pids()...)
	})

	// Ensure a dropped connection kills the remote process through the
	// stdin watcher, without any signal request.
	t.Run("ConnectionDropKillsRemoteProcess", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		e := sshexec.New(sshexec.Config{Logger: testLogger(t)})
		l := newLines()
		done := make(chan error, 1)
		go func() {
			_, err := e.Run(ctxTimeout(t), target(srv.Hop()), sshexec.Command{Cmd: "echo pid:$$; exec sleep 3003", OnLine: l.onLine})
			done <- err
		}()
		l.wait(t, 1)
		e.Close()
		if err := <-done; !errors.Is(err, sshexec.ErrConnectionLost) {
			t.Fatalf("err = %v, want ErrConnectionLost", err)
		}
		waitGone(t, l.pids()...)
	})

	// Ensure output beyond the cap is dropped and flagged, and the command
	// still completes.
	t.Run("OutputCap", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{MaxOutputBytes: 100})
		l := newLines()
		res, err := e.Run(ctxTimeout(t), target(srv.Hop()), sshexec.Command{
			Cmd:            "head -c 200000 /dev/zero | tr '\\0' 'x' | fold -w 10; echo done >&2",
			MaxOutputBytes: 1000,
			OnLine:         l.onLine,
		})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("Run = %s, %v", fmtResult(res), err)
		}
		if !res.Truncated || len(res.Stdout) != 1000 || res.Stderr != "done\n" {
			t.Fatalf("truncated=%v len(stdout)=%d stderr=%q", res.Truncated, len(res.Stdout), res.Stderr)
		}
		if n := len(l.all()); n != 92 { // 90 full stdout lines, 1 cut line, 1 stderr line
			t.Fatalf("%d lines delivered, want 92", n)
		}
	})

	// Ensure a second command reuses the pooled connection: one TCP
	// connection and one login on the server, two sessions.
	t.Run("PoolReuse", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{})
		for range 3 {
			mustRun(t, e, target(srv.Hop()), "true")
		}
		if err := srv.WaitLog(ctxTimeout(t), "Starting session", 3); err != nil {
			t.Fatal(err)
		}
		if n := srv.CountLog("Connection from"); n != 1 {
			t.Fatalf("%d connections for 3 commands, want 1", n)
		}
		if n := srv.CountLog("Accepted publickey"); n != 1 {
			t.Fatalf("%d logins for 3 commands, want 1", n)
		}
	})

	// Ensure an idle pooled connection is closed after PoolIdleTimeout
	// (keepalives do not keep it open) and the next command redials.
	t.Run("PoolIdleEviction", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{PoolIdleTimeout: 300 * time.Millisecond, KeepAlive: 50 * time.Millisecond})
		mustRun(t, e, target(srv.Hop()), "true")
		if err := srv.WaitLog(ctxTimeout(t), "Connection closed by", 1); err != nil {
			t.Fatal(err)
		}
		mustRun(t, e, target(srv.Hop()), "true")
		if n := srv.CountLog("Accepted publickey"); n != 2 {
			t.Fatalf("%d logins, want 2", n)
		}
	})

	// Ensure PoolIdleTimeout < 0 disables pooling.
	t.Run("PoolDisabled", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{PoolIdleTimeout: -1})
		mustRun(t, e, target(srv.Hop()), "true")
		mustRun(t, e, target(srv.Hop()), "true")
		if err := srv.WaitLog(ctxTimeout(t), "Connection closed by", 2); err != nil {
			t.Fatal(err)
		}
	})

	// Ensure a pooled connection killed on the server side is replaced and
	// the command still runs.
	t.Run("PoolDeadConnection", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{})
		res := mustRun(t, e, target(srv.Hop()), "echo $PPID")
		// $PPID of the login shell is the sshd process serving this
		// connection; killing it drops the pooled connection.
		ppid, err := strconv.Atoi(strings.TrimSpace(res.Stdout))
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("kill", "-9", strconv.Itoa(ppid)).CombinedOutput(); err != nil {
			t.Fatalf("kill %d: %v %s", ppid, err, out)
		}
		mustRun(t, e, target(srv.Hop()), "true")
		if n := srv.CountLog("Accepted publickey"); n != 2 {
			t.Fatalf("%d logins, want 2", n)
		}
	})

	// Ensure many concurrent commands on one host share the connection
	// without exceeding the server's MaxSessions.
	t.Run("ConcurrentSessions", func(t *testing.T) {
		t.Parallel()
		srv := sshtest.Start(t, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{MaxSessionsPerConn: 4})
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				res, err := e.Run(ctxTimeout(t), target(srv.Hop()), sshexec.Command{Cmd: fmt.Sprintf("echo %d", i)})
				if err != nil || strings.TrimSpace(res.Stdout) != strconv.Itoa(i) {
					t.Errorf("Run %d = %s, %v", i, fmtResult(res), err)
				}
			})
		}
		wg.Wait()
		if n := srv.CountLog("Accepted publickey"); n != 1 {
			t.Fatalf("%d logins, want 1", n)
		}
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()
	hop := func(id, host string) sshexec.Hop {
		return sshexec.Hop{ServerID: id, Host: host, User: "root", Auth: sshexec.Auth{Password: "x"}, HostKeyPolicy: sshexec.PolicyTOFU}
	}
	deep := make([]sshexec.Hop, 6)
	for i := range deep {
		deep[i] = hop(fmt.Sprint("s", i), fmt.Sprint("10.0.0.", i))
	}
	tests := []struct {
		name    string
		target  sshexec.Target
		wantErr error
		wantHop int
	}{
		{"ErrEmptyTarget", sshexec.Target{}, sshexec.ErrEmptyTarget, 0},
		{"ErrChainTooDeep", sshexec.Target{Hops: deep}, sshexec.ErrChainTooDeep, 5},
		{"ErrChainCycleByID", target(hop("a", "h1"), hop("b", "h2"), hop("a", "h3")), sshexec.ErrChainCycle, 2},
		{"ErrChainCycleByAddr", target(hop("", "h1"), hop("", "H1")), sshexec.ErrChainCycle, 1},
		{"ErrNoHost", target(hop("a", "")), sshexec.ErrInvalidHop, 0},
		{"ErrBadPolicy", target(sshexec.Hop{Host: "h", User: "u", HostKeyPolicy: "always"}), sshexec.ErrInvalidHop, 0},
		{"ErrBadPort", target(sshexec.Hop{Host: "h", User: "u", Port: 70000}), sshexec.ErrInvalidHop, 0},
	}
	e := newExecutor(t, sshexec.Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.Run(t.Context(), tc.target, sshexec.Command{Cmd: "true"})
			var he *sshexec.HopError
			if !errors.Is(err, tc.wantErr) || !errors.As(err, &he) || he.Stage != sshexec.StageConfig || he.Hop != tc.wantHop {
				t.Fatalf("err = %v, want %v at hop %d", err, tc.wantErr, tc.wantHop)
			}
			if len(tc.target.Hops) > 0 {
				res := e.Check(t.Context(), tc.target)
				if res[tc.wantHop].Stage != sshexec.StageConfig || res[tc.wantHop].OK {
					t.Fatalf("Check = %+v", res)
				}
			}
		})
	}
}
