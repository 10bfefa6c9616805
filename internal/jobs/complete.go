package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Outcomes are recorded in batches. A handler's return queues its job's outcome (a result row); the
// goroutine that claims jobs writes the queue in the same statement as its next claim (on PostgreSQL, one
// commit for both), or on its own when no claim comes: completionDelay after the oldest one was queued, and
// before RunDue and Stop return. A job is done only once its row says so; until then it is still running
// under this runner's lease, so a crash between a handler's return and the batch's commit runs the job again
// after the lease ends (at least once, never lost), as a crash during the handler does.

// completionDelay bounds how long a finished job's outcome waits for a claim to ride along with.
const completionDelay = 10 * time.Millisecond

// maxBatch bounds the outcomes written by one statement.
const maxBatch = 1000

// result is one run's outcome as written to the jobs row.
type result struct {
	ID         int64  `json:"id"`
	State      State  `json:"state"`
	RunAt      int64  `json:"run_at"` // 0 keeps the row's run_at
	FinishedAt int64  `json:"finished_at"`
	LastError  string `json:"last_error"`
	Undo       int    `json:"undo"` // 1 when the run does not count as an attempt (interrupted, snoozed)
}

// completer is the queue of outcomes not yet written. Its methods are safe for concurrent use.
type completer struct {
	mu      sync.Mutex
	idle    *sync.Cond // signalled when writing drops
	queue   []result
	since   time.Time // when queue's oldest result was queued (real clock)
	writing int       // batches taken and not yet written
}

func newCompleter() *completer {
	c := &completer{}
	c.idle = sync.NewCond(&c.mu)
	return c
}

// add queues res.
func (c *completer) add(res result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.since = time.Now()
	}
	c.queue = append(c.queue, res)
}

// queued returns how many results wait and since when the oldest has.
func (c *completer) queued() (int, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue), c.since
}

// take removes up to maxBatch queued results for the caller to write; the caller then calls written.
func (c *completer) take() []result {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(c.queue), maxBatch)
	if n == 0 {
		return nil
	}
	batch := c.queue[:n:n]
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil
	} else {
		c.since = time.Now()
	}
	c.writing++
	return batch
}

// written ends the write of a batch from take.
func (c *completer) written() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writing--
	c.idle.Broadcast()
}

// wait returns once no batch is being written.
func (c *completer) wait() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.writing > 0 {
		c.idle.Wait()
	}
}

// result turns how j's run ended into the row to write.
func (r *Runner) result(j *Job, oc outcome, runErr error) result {
	now := r.now()
	res := result{ID: j.ID}
	if runErr != nil && oc != snoozed {
		// PostgreSQL text cannot hold NUL; the rest of the message is kept as is.
		res.LastError = strings.ReplaceAll(runErr.Error(), "\x00", "")
	}
	switch oc {
	case succeeded:
		res.State, res.FinishedAt = Done, now.UnixMicro()
	case failed:
		res.State, res.FinishedAt = Failed, now.UnixMicro()
	case retry:
		res.State, res.RunAt = Pending, now.Add(r.cfg.Backoff(j.Attempt)).UnixMicro()
	case interrupted:
		res.State, res.Undo = Pending, 1
	case snoozed:
		var s *snoozeError
		errors.As(runErr, &s)
		res.State, res.RunAt, res.Undo = Pending, now.Add(s.after).UnixMicro(), 1
	}
	return res
}

// The statement that records a batch of results, given as a JSON array (one parameter, so one prepared
// statement serves every batch size). A row no longer running under this runner's id (cancelled, or
// rescued and reclaimed) is left alone.
const (
	sqliteFinish = `UPDATE jobs SET state = d.state,
		run_at = CASE WHEN d.run_at = 0 THEN jobs.run_at ELSE d.run_at END,
		attempt = jobs.attempt - d.undo, finished_at = d.finished_at, last_error = d.last_error, locked_by = ''
		FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.state') AS state,
			json_extract(value, '$.run_at') AS run_at, json_extract(value, '$.finished_at') AS finished_at,
			json_extract(value, '$.last_error') AS last_error, json_extract(value, '$.undo') AS undo
			FROM json_each(?)) AS d
		WHERE jobs.id = d.id AND jobs.state = 'running' AND jobs.locked_by = ?`
	postgresFinish = `UPDATE jobs AS f SET state = d.state,
		run_at = CASE WHEN d.run_at = 0 THEN f.run_at ELSE d.run_at END,
		attempt = f.attempt - d.undo, finished_at = d.finished_at, last_error = d.last_error, locked_by = ''
		FROM json_to_recordset(CAST(? AS json)) AS d(id bigint, state text, run_at bigint, finished_at bigint, last_error text, undo int)
		WHERE f.id = d.id AND f.state = 'running' AND f.locked_by = ?`
)

// encodeBatch returns batch as the JSON parameter of the finish statements.
func encodeBatch(batch []result) string {
	if len(batch) == 0 {
		return "[]"
	}
	b, err := json.Marshal(batch)
	if err != nil {
		panic("jobs: encode results: " + err.Error()) // plain strings and integers always encode
	}
	return string(b)
}

// flush writes the queued results, up to maxBatch, in one statement.
func (r *Runner) flush(ctx context.Context) error {
	batch := r.comp.take()
	if batch == nil {
		return nil
	}
	defer r.comp.written()
	query := sqliteFinish
	if r.cfg.Dialect == Postgres {
		query = postgresFinish
	}
	if _, err := r.stmts.Exec(ctx, r.db, r.q(query), encodeBatch(batch), r.id); err != nil {
		return r.lost(ctx, batch, err)
	}
	return nil
}

// lost reports a batch of results that could not be written: its jobs stay running until their lease
// ends, then run again.
func (r *Runner) lost(ctx context.Context, batch []result, err error) error {
	err = fmt.Errorf("record %d job outcomes (the jobs run again once their lease ends): %w", len(batch), err)
	r.log.ErrorContext(ctx, "record job outcomes", slog.Int("num_jobs", len(batch)), slog.Any("error", err))
	return err
}

// settle writes every queued result and waits for the writes in progress (another goroutine's claim may
// carry some), so that every outcome queued before the call is in the table when it returns. ctx should
// not be cancelled by the runner's stopping: the outcomes must be recorded anyway.
func (r *Runner) settle(ctx context.Context) error {
	var errList []error
	for {
		if n, _ := r.comp.queued(); n == 0 {
			break
		}
		if err := r.flush(ctx); err != nil {
			errList = append(errList, err)
		}
	}
	r.comp.wait()
	return errors.Join(errList...)
}

// recordCtx returns the context outcomes are written under: not cancelled with base (a stopping runner
// still records what its handlers did), but bounded.
func recordCtx(base context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(base), 10*time.Second)
}
