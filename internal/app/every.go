package app

import (
	"context"
	"time"
)

// every calls fn each interval until ctx ends (not at once; the caller runs the first pass itself when
// it needs one). Each call gets ctx bounded by timeout.
func every(ctx context.Context, interval, timeout time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		fn(cctx)
		cancel()
	}
}
