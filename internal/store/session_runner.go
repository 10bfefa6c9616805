package store

import (
	"context"
	"strings"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agentapi"
)

var _ agent.RunClaims = (*DB)(nil)

// SessionClaim implements agent.RunClaims: one UPDATE whose WHERE names the statuses the session may be
// in, so of two replicas resuming it the database lets exactly one through. A move to a status that ends
// a run is counted, with its agent.run_ended event, in the same transaction.
func (db *DB) SessionClaim(ctx context.Context, p agent.ClaimParams) (bool, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return false, err
	}
	if len(p.From) == 0 {
		return false, nil
	}
	args := []any{p.To, p.Error, p.Runner, p.Now, p.SessionID, sc.tenantID}
	for _, s := range p.From {
		args = append(args, s)
	}
	where := "status IN (" + strings.TrimSuffix(strings.Repeat("?,", len(p.From)), ",") + ")"
	if p.FromRunner != nil {
		where += " AND runner = ?"
		args = append(args, *p.FromRunner)
	}
	const set = `UPDATE ~agent_sessions SET status = ?, error = ?, runner = ?, updated_at = ?`
	if !agentapi.RunEnds(p.To) {
		res, err := sc.exec(ctx, set+` WHERE id = ? AND tenant_id = ? AND `+where, args...)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n == 1, err
	}
	won := false
	err = sc.inTx(ctx, func(tx scopeTx) error {
		s, err := scanSession(tx.queryRow(ctx, set+`, run_ends = run_ends + 1 WHERE id = ? AND tenant_id = ? AND `+where+
			` RETURNING `+sessionCols, args...))
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		won = true
		return tx.runEnded(ctx, s)
	})
	return won, err
}

// SessionRunners implements agent.RunClaims.
func (db *DB) SessionRunners(ctx context.Context) ([]agent.RunOwner, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT id, runner, updated_at FROM ~agent_sessions WHERE tenant_id = ? AND status = 'running'
		ORDER BY updated_at, id`, sc.tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []agent.RunOwner
	for rows.Next() {
		var o agent.RunOwner
		var at time.Time
		if err := rows.Scan(&o.SessionID, &o.Runner, &at); err != nil {
			return nil, err
		}
		o.UpdatedAt = at
		out = append(out, o)
	}
	return out, rows.Err()
}
