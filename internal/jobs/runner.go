package jobs

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/sqlstmt"
	"github.com/it0/it0/internal/tenant"
)

var _ Queue = (*Runner)(nil)

// Runner stores jobs and runs the ones due. Its methods are safe for concurrent use.
type Runner struct {
	cfg   Config
	db    *sql.DB
	stmts *sqlstmt.Cache // SQLite only
	log   *slog.Logger
	id    string        // locked_by of this runner's claims
	lease time.Duration // how long a claim holds a job

	comp *completer // outcomes not yet written

	mu       sync.Mutex
	handlers map[string]Handler
	running  map[int64]context.CancelFunc // handlers in flight, for Cancel
	started  bool

	wake chan struct{} // nudges the Start loop; capacity 1
	stop chan struct{} // closed by Stop: claim no more
	kill context.CancelFunc
	done chan struct{} // closed when the Start loop and its handlers have returned
}

// New migrates the jobs table and returns a runner. On SQLite it also returns to pending (or fails, when
// out of attempts) every job left running by a previous process: a SQLite file belongs to one process, so
// such jobs were interrupted by a crash. On PostgreSQL they wait for their lease to expire instead, since
// another replica may still be running them.
func New(ctx context.Context, cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := make([]byte, 8)
	rand.Read(b)
	r := &Runner{
		cfg:      cfg,
		db:       cfg.DB,
		log:      cfg.Logger.With("component", "jobs"),
		id:       hex.EncodeToString(b),
		lease:    cfg.Timeout + leaseMargin,
		comp:     newCompleter(),
		handlers: map[string]Handler{},
		running:  map[int64]context.CancelFunc{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if err := r.migrate(ctx); err != nil {
		return nil, err
	}
	if cfg.Dialect == SQLite {
		r.stmts = sqlstmt.New()
		if _, err := r.rescue(ctx, true); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register sets the handler for kind. Call it before Start or RunDue; registering a kind twice, or an empty
// kind or nil handler, panics, as http.ServeMux does. A runner claims only the kinds it has handlers for, so
// processes running different modules can share one table.
func (r *Runner) Register(kind string, h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if kind == "" || h == nil {
		panic("jobs: Register with empty kind or nil handler")
	}
	if _, ok := r.handlers[kind]; ok {
		panic("jobs: kind registered twice: " + kind)
	}
	r.handlers[kind] = h
}

func (r *Runner) now() time.Time { return r.cfg.Now().UTC() }

func (r *Runner) q(query string) string { return rewrite(r.cfg.Dialect, r.cfg.Schema, query) }

// Enqueue implements Queue.
func (r *Runner) Enqueue(ctx context.Context, j Job) (int64, error) {
	if j.Kind == "" {
		return 0, errs.Invalidf("kind", "job kind is required")
	}
	if len(j.Args) > 0 && !json.Valid(j.Args) {
		return 0, errs.Invalidf("args", "job args are not valid JSON")
	}
	if j.MaxAttempts < 0 {
		return 0, errs.Invalidf("max_attempts", "max attempts must be 0 (default) or more, got %d", j.MaxAttempts)
	}
	now := r.now()
	runAt := j.RunAt
	if runAt.IsZero() {
		runAt = now
	}
	attempts := cmp.Or(j.MaxAttempts, r.cfg.MaxAttempts)
	var key any
	if j.UniqueKey != "" {
		key = j.UniqueKey
	}
	insert := r.q(`INSERT INTO jobs (kind, args, tenant_id, unique_key, state, run_at, max_attempts, created_at)
		VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)
		ON CONFLICT (tenant_id, unique_key) WHERE unique_key IS NOT NULL AND state IN ('pending', 'running') DO NOTHING
		RETURNING id`)
	// A conflicting job can finish between the insert and the lookup; then the insert is tried again.
	for range 3 {
		var id int64
		err := r.stmts.QueryRow(ctx, r.db, insert, j.Kind, string(j.Args), j.TenantID, key, runAt.UnixMicro(), attempts, now.UnixMicro()).Scan(&id)
		if err == nil {
			if !runAt.After(now.Add(r.cfg.PollInterval)) {
				r.nudge()
			}
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("enqueue %s: %w", j.Kind, err)
		}
		err = r.stmts.QueryRow(ctx, r.db, r.q(`SELECT id FROM jobs WHERE tenant_id = ? AND unique_key = ? AND state IN ('pending', 'running')`),
			j.TenantID, j.UniqueKey).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("enqueue %s: %w", j.Kind, err)
		}
	}
	return 0, fmt.Errorf("enqueue %s: unique key %q keeps changing state", j.Kind, j.UniqueKey)
}

// Schedule enqueues a job of kind for the tenant in ctx (none for a platform job) with args as JSON, due at
// at, deduplicated by uniqueKey: what the services that schedule durable work take as their scheduler.
func (r *Runner) Schedule(ctx context.Context, kind string, args any, at time.Time, uniqueKey string) error {
	b, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("schedule %s: %w", kind, err)
	}
	tid, _ := tenant.ID(ctx)
	_, err = r.Enqueue(ctx, Job{Kind: kind, Args: b, RunAt: at, TenantID: tid, UniqueKey: uniqueKey})
	return err
}

// Cancel implements Queue.
func (r *Runner) Cancel(ctx context.Context, id int64) error {
	res, err := r.stmts.Exec(ctx, r.db, r.q(`UPDATE jobs SET state = 'cancelled', finished_at = ?, locked_by = ''
		WHERE id = ? AND state IN ('pending', 'running')`), r.now().UnixMicro(), id)
	if err != nil {
		return fmt.Errorf("cancel job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		err := r.stmts.QueryRow(ctx, r.db, r.q(`SELECT 1 FROM jobs WHERE id = ?`), id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("cancel job %d: %w", id, err)
		}
		return nil
	}
	r.interrupt(id)
	return nil
}

// CancelKey implements Queue.
func (r *Runner) CancelKey(ctx context.Context, tenantID, uniqueKey string) error {
	rows, err := r.stmts.Query(ctx, r.db, r.q(`UPDATE jobs SET state = 'cancelled', finished_at = ?, locked_by = ''
		WHERE tenant_id = ? AND unique_key = ? AND state IN ('pending', 'running') RETURNING id`),
		r.now().UnixMicro(), tenantID, uniqueKey)
	if err != nil {
		return fmt.Errorf("cancel job %q: %w", uniqueKey, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("cancel job %q: %w", uniqueKey, err)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("cancel job %q: %w", uniqueKey, err)
	}
	for _, id := range ids {
		r.interrupt(id)
	}
	return nil
}

// interrupt cancels the context of the job's handler if it runs in this process.
func (r *Runner) interrupt(id int64) {
	r.mu.Lock()
	cancel := r.running[id]
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Get returns the stored job. Returns ErrNotFound if no job has the id.
func (r *Runner) Get(ctx context.Context, id int64) (*Info, error) {
	var (
		in                           Info
		args, key                    sql.NullString
		runAt, createdAt, finishedAt int64
		state                        string
	)
	err := r.stmts.QueryRow(ctx, r.db, r.q(`SELECT id, kind, args, tenant_id, unique_key, state, run_at, attempt, max_attempts,
		last_error, created_at, finished_at FROM jobs WHERE id = ?`), id).Scan(
		&in.ID, &in.Kind, &args, &in.TenantID, &key, &state, &runAt, &in.Attempt, &in.MaxAttempts,
		&in.LastError, &createdAt, &finishedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get job %d: %w", id, err)
	}
	if args.String != "" {
		in.Args = json.RawMessage(args.String)
	}
	in.UniqueKey = key.String
	in.State = State(state)
	in.RunAt = fromMicro(runAt)
	in.CreatedAt = fromMicro(createdAt)
	if finishedAt != 0 {
		in.FinishedAt = fromMicro(finishedAt)
	}
	return &in, nil
}

func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// kinds lists the registered kinds, sorted.
func (r *Runner) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := make([]string, 0, len(r.handlers))
	for k := range r.handlers {
		list = append(list, k)
	}
	slices.Sort(list)
	return list
}

func kindFilter(kinds []string) (string, []any) {
	args := make([]any, len(kinds))
	for i, k := range kinds {
		args[i] = k
	}
	return "kind IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(kinds)), ", ") + ")", args
}

// claim writes the queued outcomes (see complete.go), then marks up to limit due jobs of the registered
// kinds as running under this runner's lease and returns them, oldest due first. On PostgreSQL both are one
// statement, so one commit.
func (r *Runner) claim(ctx context.Context, limit int) ([]*Job, error) {
	kinds := r.kinds()
	if len(kinds) == 0 || limit <= 0 {
		return nil, nil
	}
	batch := r.comp.take()
	if batch != nil {
		defer r.comp.written()
		// The outcomes must be written even when ctx ends (a stopping runner records what it ran).
		var cancel context.CancelFunc
		ctx, cancel = recordCtx(ctx)
		defer cancel()
	}
	if r.cfg.Dialect == SQLite && batch != nil {
		if _, err := r.stmts.Exec(ctx, r.db, sqliteFinish, encodeBatch(batch), r.id); err != nil {
			return nil, r.lost(ctx, batch, err)
		}
		batch = nil
	}
	now := r.now()
	filter, kindArgs := kindFilter(kinds)
	var (
		query string
		args  []any
	)
	if r.cfg.Dialect == Postgres {
		// The finish CTE runs to completion whether or not the rest reads it; it touches only rows
		// running under this runner, the claim only pending ones. The due CTE is evaluated once; SKIP
		// LOCKED makes concurrent claimers take disjoint rows, and the locked rows are re-checked against
		// the WHERE clause after the lock is granted.
		query = `WITH finish AS (` + postgresFinish + `),
			due AS (SELECT id FROM jobs WHERE state = 'pending' AND run_at <= ? AND ` + filter + `
			ORDER BY run_at, id LIMIT ? FOR UPDATE SKIP LOCKED)
			UPDATE jobs AS j SET state = 'running', attempt = j.attempt + 1, locked_by = ?, locked_until = ?
			FROM due WHERE j.id = due.id
			RETURNING j.id, j.kind, j.args, j.tenant_id, j.unique_key, j.run_at, j.attempt, j.max_attempts`
		args = append([]any{encodeBatch(batch), r.id, now.UnixMicro()}, kindArgs...)
		args = append(args, limit, r.id, now.Add(r.lease).UnixMicro())
	} else {
		// One statement: SQLite holds the write lock for all of it, so no other connection can claim
		// the same rows.
		query = `UPDATE jobs SET state = 'running', attempt = attempt + 1, locked_by = ?, locked_until = ?
			WHERE id IN (SELECT id FROM jobs WHERE state = 'pending' AND run_at <= ? AND ` + filter + `
			ORDER BY run_at, id LIMIT ?)
			RETURNING id, kind, args, tenant_id, unique_key, run_at, attempt, max_attempts`
		args = append(append([]any{r.id, now.Add(r.lease).UnixMicro(), now.UnixMicro()}, kindArgs...), limit)
	}
	list, err := r.claimed(ctx, query, args)
	if err != nil && batch != nil {
		return nil, r.lost(ctx, batch, err)
	}
	return list, err
}

// claimed runs a claim query and returns its jobs, oldest due first.
func (r *Runner) claimed(ctx context.Context, query string, args []any) ([]*Job, error) {
	rows, err := r.stmts.Query(ctx, r.db, r.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	defer rows.Close()
	var list []*Job
	for rows.Next() {
		var (
			j       Job
			jobArgs string
			key     sql.NullString
			runAt   int64
		)
		if err := rows.Scan(&j.ID, &j.Kind, &jobArgs, &j.TenantID, &key, &runAt, &j.Attempt, &j.MaxAttempts); err != nil {
			return nil, fmt.Errorf("claim jobs: %w", err)
		}
		if jobArgs != "" {
			j.Args = json.RawMessage(jobArgs)
		}
		j.UniqueKey = key.String
		j.RunAt = fromMicro(runAt)
		list = append(list, &j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	slices.SortFunc(list, func(a, b *Job) int {
		return cmp.Or(a.RunAt.Compare(b.RunAt), cmp.Compare(a.ID, b.ID))
	})
	return list, nil
}

// rescue ends the leases that expired (all, when everyone is true): each such job goes back to pending, or
// fails when it has used its attempts, so that a job that kills its process every time does not loop
// forever.
func (r *Runner) rescue(ctx context.Context, everyone bool) (int64, error) {
	now := r.now().UnixMicro()
	cond, args := ` AND locked_until <= ?`, []any{now, now}
	if everyone {
		cond, args = ``, []any{now}
	}
	res, err := r.stmts.Exec(ctx, r.db, r.q(`UPDATE jobs SET
		state = CASE WHEN attempt >= max_attempts THEN 'failed' ELSE 'pending' END,
		finished_at = CASE WHEN attempt >= max_attempts THEN CAST(? AS BIGINT) ELSE 0 END,
		last_error = 'interrupted: the worker holding the job stopped', locked_by = ''
		WHERE state = 'running'`+cond), args...)
	if err != nil {
		return 0, fmt.Errorf("rescue jobs: %w", err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		r.log.WarnContext(ctx, "rescued interrupted jobs", slog.Int64("num_jobs", n))
	}
	return n, nil
}

// outcome says how a handler run ended.
type outcome int

const (
	succeeded outcome = iota
	retry
	failed
	interrupted // the runner stopped (or RunDue's context ended): run it again without counting the attempt
	snoozed     // the handler asked to run again later (Snooze)
)

// work runs one claimed job and queues how it ended (see complete.go). base is cancelled when the runner
// must stop.
func (r *Runner) work(base context.Context, c *claimed) {
	j := c.job
	r.mu.Lock()
	h := r.handlers[j.Kind]
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.ctx, r.cfg.Timeout)
	start := time.Now()
	err := call(ctx, h, j)
	cancel()
	r.forget(c)

	oc := succeeded
	var snooze *snoozeError
	switch {
	case err == nil:
	case errors.As(err, &snooze):
		oc = snoozed
	case base.Err() != nil:
		oc = interrupted
	case isPermanent(err) || j.Attempt >= j.MaxAttempts:
		oc = failed
	default:
		oc = retry
	}
	// Queue the outcome even when base is cancelled: the row must not stay running until its lease ends.
	r.comp.add(r.result(j, oc, err))
	if err != nil && oc != snoozed {
		lctx := context.WithoutCancel(base)
		lvl := slog.LevelWarn
		if oc == failed {
			lvl = slog.LevelError
		}
		r.log.Log(lctx, lvl, "job failed", slog.Int64("job_id", j.ID), slog.String("job_kind", j.Kind),
			slog.Int("attempt", j.Attempt), slog.Int("max_attempts", j.MaxAttempts), slog.Bool("will_retry", oc == retry || oc == interrupted),
			slog.Duration("duration", time.Since(start)), slog.Any("error", err))
	}
}

// call runs h, turning a panic into an error so that one bad handler cannot take the process down.
func call(ctx context.Context, h Handler, j *Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	if h == nil {
		return Permanent(fmt.Errorf("no handler for kind %q", j.Kind))
	}
	return h(ctx, j)
}

// RunDue claims and runs every job due at Config.Now, up to Config.Workers at a time, and returns when
// none is left due, with how many runs it made, once their outcomes are recorded. Jobs that handlers
// enqueue due now run too; retries scheduled in the future do not. It first ends expired leases. Tests call
// it after moving their clock; it can also drive a runner from an external scheduler instead of Start.
// Cancelling ctx interrupts the handlers; their jobs go back to pending without using an attempt.
func (r *Runner) RunDue(ctx context.Context) (int, error) {
	if _, err := r.rescue(ctx, false); err != nil {
		return 0, err
	}
	p := r.newPool(ctx)
	settled := false // every outcome is written and nothing was claimed since
	var err error
	for {
		if err = ctx.Err(); err != nil {
			break
		}
		p.reap()
		if p.claimable() {
			before := p.started
			var full bool
			if full, err = p.claim(ctx); err != nil {
				break
			}
			if p.started > before {
				settled = false
			}
			if full {
				continue // there may be more due
			}
			if p.busy == 0 {
				// Nothing runs and nothing was due. Once the outcomes are written, a job they made due
				// (snoozed or retried to now) can be claimed; when none is, RunDue is done.
				if settled {
					break
				}
				rctx, cancel := recordCtx(ctx)
				err = r.settle(rctx)
				cancel()
				if err != nil {
					break
				}
				settled = true
				continue
			}
		}
		if p.reap() > 0 && p.claimable() {
			continue // handlers returned meanwhile: their outcomes ride with the next claim
		}
		p.wait(nil, nil, p.waitLimit(r.flushWait(ctx)))
	}
	p.close()
	rctx, cancel := recordCtx(ctx)
	defer cancel()
	if serr := r.settle(rctx); err == nil {
		err = serr
	}
	return p.started, err
}

// flushWait writes the queued outcomes if they should not wait any longer for a claim, and otherwise
// returns how long they may (0: no outcome waits).
func (r *Runner) flushWait(ctx context.Context) time.Duration {
	n, since := r.comp.queued()
	if n == 0 {
		return 0
	}
	left := completionDelay - time.Since(since)
	if left <= 0 {
		rctx, cancel := recordCtx(ctx)
		defer cancel()
		r.flush(rctx) // a failure is logged; the jobs run again after their lease
		return 0
	}
	return left
}

// Start runs the polling loop in the background until Stop (or until ctx ends). It returns an error if the
// runner was already started.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("start jobs: already started")
	}
	r.started = true
	base, kill := context.WithCancel(context.WithoutCancel(ctx))
	r.kill = kill
	go func() {
		select {
		case <-ctx.Done():
			r.halt()
		case <-r.done:
		}
	}()
	go r.loop(base)
	return nil
}

func (r *Runner) halt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
}

// Stop stops claiming jobs and waits for running handlers to return. When ctx ends first, it cancels the
// handlers' contexts (their jobs go back to pending without using an attempt), waits for them, and returns
// ctx's error. Stop on a runner that was never started returns nil.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return nil
	}
	r.halt()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.kill()
		<-r.done
		return fmt.Errorf("stop jobs: %w", ctx.Err())
	}
}

// Notify makes the Start loop look for due jobs now instead of at its next poll, without blocking. Another
// process calls it through its own channel (IT0's bus) after enqueueing jobs only this runner can run:
// Enqueue already wakes the runner it was called on.
func (r *Runner) Notify() { r.nudge() }

// nudge wakes the Start loop without blocking.
func (r *Runner) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// loop claims jobs as worker slots free up, and otherwise waits for the next due time, an Enqueue, a
// finished handler, an outcome's completionDelay or PollInterval, whichever comes first.
func (r *Runner) loop(base context.Context) {
	defer close(r.done)
	defer r.kill()
	p := r.newPool(base)
	defer func() {
		p.close()
		rctx, cancel := recordCtx(base)
		defer cancel()
		r.settle(rctx) // a failure is logged
	}()
	var nextRescue, nextPrune time.Time
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		p.reap()
		now := r.now()
		if !now.Before(nextRescue) {
			if _, err := r.rescue(base, false); err != nil {
				r.log.ErrorContext(base, "rescue jobs", slog.Any("error", err))
			}
			nextRescue = now.Add(min(r.lease/4, 15*time.Second))
		}
		if !now.Before(nextPrune) {
			if err := r.prune(base); err != nil {
				r.log.ErrorContext(base, "prune jobs", slog.Any("error", err))
			}
			nextPrune = now.Add(time.Hour)
		}
		wait := r.cfg.PollInterval
		if p.claimable() {
			full, err := p.claim(base)
			if err != nil {
				r.log.ErrorContext(base, "claim jobs", slog.Any("error", err))
			}
			if full {
				continue // there may be more due right now
			}
			if err == nil {
				if next, ok, err := r.nextDue(base); err != nil {
					r.log.ErrorContext(base, "find next due job", slog.Any("error", err))
				} else if ok {
					wait = min(wait, max(next.Sub(r.now()), time.Millisecond))
				}
			}
		}
		if p.reap() > 0 && p.claimable() {
			continue // handlers returned meanwhile: their outcomes ride with the next claim
		}
		if d := p.waitLimit(r.flushWait(base)); d > 0 {
			wait = min(wait, d)
		}
		p.wait(r.stop, r.wake, wait)
	}
}

// nextDue returns the earliest run_at among pending jobs this runner can run.
func (r *Runner) nextDue(ctx context.Context) (time.Time, bool, error) {
	kinds := r.kinds()
	if len(kinds) == 0 {
		return time.Time{}, false, nil
	}
	filter, args := kindFilter(kinds)
	var next sql.NullInt64
	if err := r.stmts.QueryRow(ctx, r.db, r.q(`SELECT MIN(run_at) FROM jobs WHERE state = 'pending' AND `+filter), args...).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("next due job: %w", err)
	}
	return fromMicro(next.Int64), next.Valid, nil
}

// prune deletes jobs finished longer than Retention ago.
func (r *Runner) prune(ctx context.Context) error {
	cutoff := r.now().Add(-r.cfg.Retention).UnixMicro()
	if _, err := r.stmts.Exec(ctx, r.db, r.q(`DELETE FROM jobs WHERE state IN ('done', 'failed', 'cancelled') AND finished_at < ?`), cutoff); err != nil {
		return fmt.Errorf("prune jobs: %w", err)
	}
	return nil
}

// Lag returns how late the queue is: the age of the oldest pending job that is already due (0 when
// none is). IT0 exports it as it0_job_queue_lag_seconds.
func (r *Runner) Lag(ctx context.Context) (time.Duration, error) {
	now := r.now()
	var oldest sql.NullInt64
	if err := r.stmts.QueryRow(ctx, r.db, r.q(`SELECT MIN(run_at) FROM jobs WHERE state = 'pending' AND run_at <= ?`), now.UnixMicro()).Scan(&oldest); err != nil {
		return 0, fmt.Errorf("job queue lag: %w", err)
	}
	if !oldest.Valid {
		return 0, nil
	}
	return max(now.Sub(fromMicro(oldest.Int64)), 0), nil
}
