package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// KindStats is the queue's backlog of one job kind.
type KindStats struct {
	Kind string
	// Due counts pending jobs whose time has come; Scheduled counts those still in the future.
	Due, Scheduled int
	// OldestDue is how long the oldest due job has waited (0 when none is due).
	OldestDue time.Duration
	// Running counts jobs a worker holds now.
	Running int
}

// Stats returns the backlog by kind in one query, for metrics (queue depth and age by kind), sorted by
// kind. Every kind this runner has a handler for is listed, with zeros when it has no jobs, so that its
// series exist before its first job does.
func (r *Runner) Stats(ctx context.Context) ([]KindStats, error) {
	now := r.now()
	nowMicro := now.UnixMicro()
	rows, err := r.stmts.Query(ctx, r.db, r.q(`SELECT kind,
		SUM(CASE WHEN state = 'pending' AND run_at <= ? THEN 1 ELSE 0 END),
		SUM(CASE WHEN state = 'pending' AND run_at > ? THEN 1 ELSE 0 END),
		SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END),
		MIN(CASE WHEN state = 'pending' AND run_at <= ? THEN run_at END)
		FROM jobs WHERE state IN ('pending', 'running') GROUP BY kind ORDER BY kind`), nowMicro, nowMicro, nowMicro)
	if err != nil {
		return nil, fmt.Errorf("job queue stats: %w", err)
	}
	defer rows.Close()
	var out []KindStats
	for rows.Next() {
		var k KindStats
		var oldest sql.NullInt64
		if err := rows.Scan(&k.Kind, &k.Due, &k.Scheduled, &k.Running, &oldest); err != nil {
			return nil, fmt.Errorf("job queue stats: %w", err)
		}
		if oldest.Valid {
			k.OldestDue = max(now.Sub(fromMicro(oldest.Int64)), 0)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("job queue stats: %w", err)
	}
	r.mu.Lock()
	for kind := range r.handlers {
		if !slices.ContainsFunc(out, func(k KindStats) bool { return k.Kind == kind }) {
			out = append(out, KindStats{Kind: kind})
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b KindStats) int { return strings.Compare(a.Kind, b.Kind) })
	return out, nil
}
