package sshexec_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/inventory/sshtest"
)

func TestFanOut(t *testing.T) {
	t.Parallel()

	// Ensure every target reports once, with its own output, and an
	// unreachable one reports its error without holding up the rest.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		srvs := sshtest.StartMany(t, 20, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{})
		targets := make([]sshexec.Target, len(srvs)+1)
		for i, s := range srvs {
			targets[i] = target(s.Hop())
		}
		bad := srvs[0].Hop()
		bad.ServerID, bad.Host = "bad", "127.0.0.9"
		targets[len(srvs)] = target(bad)

		seen := make(map[int]bool)
		e.FanOut(ctxTimeout(t), targets, sshexec.Command{Cmd: "echo $SSH_CONNECTION"}, 4, func(i int, r sshexec.Result, err error) {
			if seen[i] {
				t.Errorf("target %d reported twice", i)
			}
			seen[i] = true
			if i == len(srvs) {
				var he *sshexec.HopError
				if !errors.As(err, &he) || he.Stage != sshexec.StageTCP {
					t.Errorf("unreachable target: %v", err)
				}
				return
			}
			if err != nil || !strings.HasSuffix(strings.TrimSpace(r.Stdout), " "+srvs[i].HostPort()[len("127.0.0.1:"):]) {
				t.Errorf("target %d: %s, %v", i, fmtResult(r), err)
			}
		})
		if len(seen) != len(targets) {
			t.Fatalf("%d of %d targets reported", len(seen), len(targets))
		}
	})

	// Ensure a cancelled fan-out reports every target with ctx's error.
	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		srvs := sshtest.StartMany(t, 3, sshtest.Options{})
		e := newExecutor(t, sshexec.Config{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		targets := []sshexec.Target{target(srvs[0].Hop()), target(srvs[1].Hop()), target(srvs[2].Hop())}
		n := 0
		e.FanOut(ctx, targets, sshexec.Command{Cmd: "true"}, 0, func(_ int, _ sshexec.Result, err error) {
			n++
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v", err)
			}
		})
		if n != 3 {
			t.Fatalf("%d results", n)
		}
	})
}
