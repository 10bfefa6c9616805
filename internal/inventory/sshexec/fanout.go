package sshexec

import (
	"context"
	"sync"
	"sync/atomic"
)

// FanOut runs cmd on every target, at most parallelism at a time
// (DefaultParallelism if <= 0), and calls onResult with each target's index
// and outcome as it finishes. Calls to onResult are serialised; they come
// from worker goroutines, in completion order. FanOut returns when every
// target is done; once ctx ends, the remaining targets fail fast with ctx's
// error.
//
// A fixed set of workers pulls targets from a counter, so a fan-out to
// thousands of hosts starts parallelism goroutines, not one per host.
// Targets behind the same jump hosts share the jump connections.
func (e *Executor) FanOut(ctx context.Context, targets []Target, cmd Command, parallelism int, onResult func(i int, r Result, err error)) {
	if parallelism <= 0 {
		parallelism = DefaultParallelism
	}
	var (
		next atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	for range min(parallelism, len(targets)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(targets) {
					return
				}
				r, err := e.Run(ctx, targets[i], cmd)
				if onResult != nil {
					mu.Lock()
					onResult(i, r, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
}
