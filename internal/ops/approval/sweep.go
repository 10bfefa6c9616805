package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/it0/it0/internal/audit"
)

// Jobs of the sweeper. Both run Sweep for the job's tenant; neither names an approval.
//
// Approvals are not expired one job each: 10,000 approvals that time out together would be 10,000 jobs and
// 10,000 transactions. Instead:
//
//   - JobSweep is the precise trigger: opening an approval queues one for the moment it expires, keyed by
//     that second, so a burst of approvals expiring together shares one job. The job decides every
//     approval due by then in one transaction; if another one expires later in the same second (its own
//     enqueue found the job already queued), the job runs again at that moment.
//   - JobTick is the safety net: one per tenant, run every Config.TickEvery (it snoozes itself), so an
//     approval whose trigger was never queued (the trigger lives in the job database, queued after the
//     approval's commit) is still decided within TickEvery of its moment. The app's repair pass queues the
//     tick of every tenant at startup and periodically (EnsureTick).
//   - JobExpire is the per-approval job of earlier versions; jobs still queued run a sweep.
//
// The jobs runner runs each job on one replica at a time, so one replica sweeps a tenant at a time;
// two sweeps overlapping anyway (a trigger and the tick) cannot decide an approval twice: the store
// decides only rows still pending.
const (
	JobSweep  = "approval.sweep"
	JobTick   = "approval.tick"
	JobExpire = "approval.expire"
)

// JobKinds are the sweeper's jobs; HandleJob runs them.
var JobKinds = []string{JobSweep, JobTick, JobExpire}

// tickKey is the unique key of a tenant's periodic sweep.
const tickKey = "approval.tick"

// ErrRunAgain is what HandleJob returns when its job must run again after the duration (jobs.Snooze).
type ErrRunAgain struct{ After time.Duration }

func (e *ErrRunAgain) Error() string { return "sweep again in " + e.After.String() }

// HandleJob runs one of the sweeper's jobs for the tenant in ctx. For JobTick it returns *ErrRunAgain
// once the sweep is done (or failed: the tick must go on either way; the failure is logged); for JobSweep
// when an approval expires later in the job's second.
func (s *Service) HandleJob(ctx context.Context, kind string) error {
	switch kind {
	case JobSweep, JobExpire:
		if _, err := s.Sweep(ctx); err != nil {
			return err
		}
		next, ok, err := s.store.ApprovalNextExpiry(ctx)
		if err != nil || !ok || kind == JobExpire {
			return err
		}
		if wait := next.Sub(s.now()); wait < time.Second {
			return &ErrRunAgain{After: max(wait, 0)}
		}
		return nil
	case JobTick:
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "periodic approval sweep", slog.String("error", err.Error()))
		}
		return &ErrRunAgain{After: s.cfg.TickEvery}
	}
	return fmt.Errorf("the approval sweeper has no job %q", kind)
}

// Sweep decides every approval of the tenant in ctx that is still pending at its timeout, by the rule of
// Approval.Expire: one transaction per Config.SweepBatch approvals, each with its audit entry and its
// approval.decided event. It returns how many it decided.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	ctx = audit.WithActor(ctx, audit.Actor{Type: audit.ActorSystem, ID: "timeout"})
	total := 0
	defer func() {
		if total > 0 {
			s.notify(ctx)
		}
	}()
	for {
		list, err := s.store.ApprovalExpireDue(ctx, ExpireParams{Now: s.now(), Limit: s.cfg.SweepBatch, Audit: s.audit})
		total += len(list)
		if err != nil {
			return total, fmt.Errorf("sweep approvals: %w", err)
		}
		if len(list) < s.cfg.SweepBatch {
			return total, nil
		}
	}
}

// TimedOutRecord is the audit record of approval a decided by its timeout (the sweeper writes one per
// approval, in the transaction that decides it).
func TimedOutRecord(a *Approval) audit.Record {
	return audit.Record{Action: "approval.timed_out", ResourceType: "approval", ResourceID: a.ID,
		Description: fmt.Sprintf("L%d approval timed out: %s", a.RiskLevel, a.Status),
		Detail:      map[string]any{"session_id": a.SessionID, "command": a.Command, "status": a.Status}}
}

// trigger queues the sweep of the second at which an approval expires (see JobSweep) and makes sure the
// tenant's tick exists. A failure is only logged: the tick decides the approval anyway, and the repair
// pass queues a missing tick.
func (s *Service) trigger(ctx context.Context, at time.Time) {
	if s.cfg.Schedule == nil {
		return
	}
	err := errors.Join(
		s.cfg.Schedule(ctx, JobSweep, struct{}{}, at, JobSweep+":"+strconv.FormatInt(at.Unix(), 10)),
		s.EnsureTick(ctx))
	if err != nil {
		s.log.WarnContext(ctx, "queue approval sweep (the periodic sweep decides it)", slog.String("error", err.Error()))
	}
}

// EnsureTick queues the tenant's periodic sweep unless it is queued already (its unique key makes this a
// no-op then). The first tick runs at once: it also decides what is overdue after a restart.
func (s *Service) EnsureTick(ctx context.Context) error {
	if s.cfg.Schedule == nil {
		return nil
	}
	return s.cfg.Schedule(ctx, JobTick, struct{}{}, s.now(), tickKey)
}
