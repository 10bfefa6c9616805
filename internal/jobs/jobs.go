// Package jobs is IT0's durable job queue: everything that must happen later (approval timeouts, escalation
// steps, cron and threshold triggers of standing orders, notification retries, daily reports) is a row in a
// jobs table, never a goroutine sleeping in memory.
//
// One implementation runs on SQLite and PostgreSQL over database/sql. A job is claimed by exactly one worker:
// on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so any number of replicas can share the table; on SQLite with a
// single UPDATE … RETURNING statement, which holds the database's write lock while it runs. A claim is a lease:
// when a process dies holding a job, the job goes back to pending once the lease expires (on SQLite, which only
// one process uses, at once when the next Runner opens the file). Delivery is therefore at least once, and
// handlers must be idempotent (an approval that is already decided is left alone).
//
// Outcomes are written in batches: a handler's return queues its job's outcome, and the next claim writes
// the queue in the same statement (one commit for both on PostgreSQL), or it is written on its own within
// 10 ms when no claim comes, and always before RunDue and Stop return. A job is done only once that write
// commits; until then it stays running under its lease, so a crash in between runs it again, as a crash
// during the handler does. While a backlog is being drained, a claim also takes up to Config.Workers jobs
// more than the free workers, which start as workers free up (see pool), so draining costs one commit per
// 2×Workers jobs, not one or two per job (BenchmarkDrain).
//
// Time comes from Config.Now. It alone decides what is due, so tests move a fake clock and call RunDue, which
// claims and runs everything due at that instant before it returns. In production Start runs a loop that
// polls at Config.PollInterval, sleeps no longer than until the next known due time, and is woken by Enqueue.
//
// # Periodic jobs
//
// There is no separate periodic scheduler. A cron job is a chain: each run's handler enqueues the next
// occurrence, computed with NextCron, under a UniqueKey that names that occurrence, for example
// "so-cron:SO-20261126-001:2026-11-27T00:00:00Z". If the process dies after the handler enqueued the next
// occurrence but before the current job was marked done, the retried run enqueues the same key again, which
// is deduplicated rather than doubled. The owner of the schedule (the standing order) can also "ensure" its
// next occurrence at startup with the same key: if the chain is intact the insert is a no-op. See
// ExampleNextCron.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/it0/it0/internal/errs"
)

// Job is a unit of deferred work. The caller fills Kind, Args, RunAt, TenantID, UniqueKey and MaxAttempts;
// the runner fills ID and Attempt when it hands the job to a handler.
type Job struct {
	// ID identifies the job once enqueued.
	ID int64
	// Kind selects the handler registered with Runner.Register. Required.
	Kind string
	// Args is the handler's input, any JSON value. Empty is allowed.
	Args json.RawMessage
	// RunAt is when the job becomes due. Zero means now.
	RunAt time.Time
	// TenantID is the tenant the job acts for; empty for platform jobs.
	TenantID string
	// UniqueKey, when set, deduplicates: while a job with the same TenantID and UniqueKey is pending or
	// running, enqueueing another returns the existing job's id and inserts nothing.
	UniqueKey string
	// MaxAttempts bounds how many times the handler runs before the job fails. Zero means
	// Config.MaxAttempts.
	MaxAttempts int
	// Attempt counts runs so far, this one included (1 on the first run).
	Attempt int
}

// State is where a job is in its life.
type State string

// Job states. Pending and Running are live; the others are final.
const (
	Pending   State = "pending"   // waiting for RunAt, or for a retry
	Running   State = "running"   // claimed by a worker, under a lease
	Done      State = "done"      // the handler returned nil
	Failed    State = "failed"    // the handler failed MaxAttempts times, or returned a Permanent error
	Cancelled State = "cancelled" // Cancel was called before the job finished
)

// Info is a stored job and its progress, as returned by Runner.Get.
type Info struct {
	Job
	State      State
	LastError  string
	CreatedAt  time.Time
	FinishedAt time.Time // zero while the job is live
}

// Handler does one job. A nil return finishes it; an error retries it after a backoff, up to MaxAttempts
// (see Permanent). The context is cancelled at Config.Timeout, when the job is cancelled, and when the runner
// stops.
type Handler func(ctx context.Context, j *Job) error

// Queue is what producers of jobs need: the small surface other modules depend on.
type Queue interface {
	// Enqueue stores j and returns its id. With a UniqueKey that is already pending or running for the
	// same tenant, it returns that job's id and stores nothing. Returns an errs.Invalid error when j has no
	// Kind, Args that are not JSON, or a negative MaxAttempts.
	Enqueue(ctx context.Context, j Job) (id int64, err error)
	// Cancel makes sure the job never runs (again). A running handler has its context cancelled. Cancelling
	// a finished job is a no-op. Returns ErrNotFound if no job has the id.
	Cancel(ctx context.Context, id int64) error
	// CancelKey cancels the live job with the tenant and unique key, if any: a no-op when there is none.
	CancelKey(ctx context.Context, tenantID, uniqueKey string) error
}

// ErrNotFound is returned for a job id that does not exist (or has been pruned).
var ErrNotFound = errs.New(errs.NotFound, "job not found")

// permanentError marks a handler error that must not be retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that the runner fails the job at once instead of retrying it: for inputs that will
// never work, such as Args that do not parse.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// snoozeError asks for the job to run again later.
type snoozeError struct{ after time.Duration }

func (e *snoozeError) Error() string { return fmt.Sprintf("run again in %s", e.after) }

// Snooze is what a handler returns to run its job again after d, without using an attempt: a job done in
// two steps (the second once everything due now has run) takes one write, not a new job.
func Snooze(d time.Duration) error { return &snoozeError{after: d} }

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
