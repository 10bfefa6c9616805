package jobs

import (
	"context"
	"errors"
	"fmt"
)

// Ping reports whether the runner is working: started, not stopped, and its database answering
// (readiness, /readyz).
func (r *Runner) Ping(ctx context.Context) error {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return errors.New("the job runner is not started")
	}
	select {
	case <-r.done:
		return errors.New("the job runner has stopped")
	default:
	}
	if err := r.db.PingContext(ctx); err != nil {
		return fmt.Errorf("job database: %w", err)
	}
	return nil
}
