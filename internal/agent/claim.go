package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/it0/it0/internal/errs"
)

// RunClaims is what the agent needs from storage to run sessions on several replicas: a session's status
// moves by compare-and-set, and each running session names the replica (runner) running it.
type RunClaims interface {
	// SessionClaim moves session p.SessionID to p.To on p.Runner only if its status is one of p.From (and,
	// when p.FromRunner is set, it runs on that runner). It reports whether the move happened: of two
	// replicas claiming the same session, exactly one gets true. A move to a status that ends a run
	// (agentapi.RunEnds) counts the run end and writes its agent.run_ended event in the same transaction.
	SessionClaim(ctx context.Context, p ClaimParams) (bool, error)
	// SessionRunners lists the running sessions with the replica running each.
	SessionRunners(ctx context.Context) ([]RunOwner, error)
}

// ClaimParams is a compare-and-set on a session's status and runner.
type ClaimParams struct {
	SessionID  string
	From       []string // the statuses it may be in
	FromRunner *string  // when set, the runner it must be on
	To         string
	Runner     string // the runner it is on afterwards
	Error      string // the session's error afterwards
	Now        time.Time
}

// RunOwner is a running session and the replica running it.
type RunOwner struct {
	SessionID string
	Runner    string
	UpdatedAt time.Time
}

// runnerGrace is how long a running session that names no runner (claimed by a version before runners,
// or between its insert and its claim) is left alone before it counts as interrupted.
const runnerGrace = time.Minute

// runners is the service's identity among replicas and how it tells whether another one is alive.
type runners struct {
	once  sync.Once
	id    string
	alive func(ctx context.Context, runner string) (bool, error)
}

// SetRunner names this replica (id) and tells the service how to find out whether another replica is
// alive; without it a process names itself randomly and counts every other runner as gone (one process
// on its own database). Call it before any run starts.
func (s *Service) SetRunner(id string, alive func(ctx context.Context, runner string) (bool, error)) {
	s.runners.once.Do(func() {})
	s.runners.id, s.runners.alive = id, alive
}

// runnerID is this replica's name in the runner column.
func (s *Service) runnerID() string {
	s.runners.once.Do(func() {
		b := make([]byte, 6)
		rand.Read(b)
		s.runners.id = "process-" + hex.EncodeToString(b)
	})
	return s.runners.id
}

// claim moves sess to running on this replica if its status is one of from, and updates sess to match.
// errs.Conflict when another replica (or request) moved it first.
func (s *Service) claim(ctx context.Context, sess *Session, from ...string) error {
	now := s.now()
	ok, err := s.store.SessionClaim(ctx, ClaimParams{SessionID: sess.ID, From: from, To: StatusRunning, Runner: s.runnerID(), Now: now})
	if err != nil {
		return fmt.Errorf("claim session: %w", err)
	}
	if !ok {
		return errs.New(errs.Conflict, "the session was resumed elsewhere").WithHint("follow its events; it is running")
	}
	sess.Status, sess.Error, sess.UpdatedAt = StatusRunning, "", now
	return nil
}

// gone reports whether the run of o is no longer going: its replica stopped. A run of this replica is
// going until it records its end itself.
func (s *Service) gone(ctx context.Context, o RunOwner) (bool, error) {
	switch {
	case o.Runner == s.runnerID():
		return false, nil
	case o.Runner == "":
		return s.now().Sub(o.UpdatedAt) > runnerGrace, nil
	case s.runners.alive == nil:
		return true, nil
	}
	alive, err := s.runners.alive(ctx, o.Runner)
	return !alive, err
}

// interrupt moves the running session o, whose replica is gone, to status to (failed, or awaiting_approval
// when it is repaired) as interrupted, if no other replica did first. It reports whether this call did,
// with the session as it is now.
func (s *Service) interrupt(ctx context.Context, o RunOwner, to string) (*Session, bool, error) {
	runner := o.Runner
	reason := "interrupted: the replica running it stopped"
	ok, err := s.store.SessionClaim(ctx, ClaimParams{SessionID: o.SessionID, From: []string{StatusRunning}, FromRunner: &runner,
		To: to, Error: reason, Now: s.now()})
	if err != nil || !ok {
		return nil, false, err
	}
	sess, err := s.store.SessionGet(ctx, o.SessionID)
	if err != nil {
		return nil, false, err
	}
	s.log.WarnContext(ctx, "session interrupted", slog.String("session_id", o.SessionID), slog.String("runner", o.Runner))
	return sess, true, nil
}
