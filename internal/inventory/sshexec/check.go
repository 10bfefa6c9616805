package sshexec

import (
	"context"
	"errors"
	"fmt"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Check connects to every hop of t in turn, each through the previous one,
// on fresh connections (not the pool), and reports per hop whether it was
// reachable and, if not, at which stage it failed. Hops after a failure are
// reported as not attempted. An invalid Target is reported on the offending
// hop with StageConfig.
func (e *Executor) Check(ctx context.Context, t Target) []HopResult {
	results := make([]HopResult, len(t.Hops))
	for i, h := range t.Hops {
		results[i] = HopResult{Hop: i, ServerID: h.ServerID, Name: h.Name}
	}
	if err := validate(t, e.cfg.MaxDepth); err != nil {
		var he *HopError
		if errors.As(err, &he) && he.Hop < len(results) {
			results[he.Hop].Stage = StageConfig
			results[he.Hop].Error = he.Err.Error()
			skip(results, he.Hop)
		}
		return results
	}
	var clients []*gossh.Client
	defer func() {
		for i := len(clients) - 1; i >= 0; i-- {
			clients[i].Close()
		}
	}()
	var parent *gossh.Client
	for i, h := range t.Hops {
		start := time.Now()
		c, _, err := e.dialHop(ctx, parent, i, h)
		results[i].Latency = time.Since(start)
		if err != nil {
			var he *HopError
			if errors.As(err, &he) {
				results[i].Stage = he.Stage
				results[i].Error = he.Err.Error()
			} else {
				results[i].Stage = StageHandshake
				results[i].Error = err.Error()
			}
			skip(results, i)
			return results
		}
		results[i].OK = true
		clients = append(clients, c)
		parent = c
	}
	return results
}

func skip(results []HopResult, failed int) {
	for j := failed + 1; j < len(results); j++ {
		results[j].Error = fmt.Sprintf("not attempted: hop %d failed", failed)
	}
}
