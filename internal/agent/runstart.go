package agent

import (
	"context"
	"time"
)

// RunStart is what a run's context knows about the run's beginning: when it started and the session's
// totals at that moment, so that an OnRunEnd hook can tell what this one run took (metrics).
type RunStart struct {
	At         time.Time
	CostUSD    float64
	TokensUsed int
}

type runStartKey struct{}

func withRunStart(ctx context.Context, sess *Session, now time.Time) context.Context {
	return context.WithValue(ctx, runStartKey{}, RunStart{At: now, CostUSD: sess.CostUSD, TokensUsed: sess.TokensUsed})
}

// RunStartFrom returns the start of the run ctx belongs to. A run ended outside its own context (cancelled
// from a request, failed at startup recovery) has none.
func RunStartFrom(ctx context.Context) (RunStart, bool) {
	rs, ok := ctx.Value(runStartKey{}).(RunStart)
	return rs, ok
}
