package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/checks"
)

var _ checks.Store = (*DB)(nil)

const checkCols = `doc, enabled, state, streak, state_changed_at, last_checked_at, last_status, last_message`

func scanCheck(row interface{ Scan(...any) error }) (*checks.Check, error) {
	var doc, state, lastStatus string
	var c checks.Check
	var enabled bool
	var changed, checked sql.NullTime
	var streak int
	var msg string
	if err := row.Scan(&doc, &enabled, &state, &streak, &changed, &checked, &lastStatus, &msg); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		return nil, fmt.Errorf("check document: %w", err)
	}
	c.Enabled, c.State, c.Streak, c.LastStatus, c.LastMessage = enabled, checks.State(state), streak, checks.State(lastStatus), msg
	c.StateChangedAt, c.LastCheckedAt = nullTime(changed), nullTime(checked)
	return &c, nil
}

func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time.UTC()
	return &v
}

// checkDoc is a check's definition as stored; the state lives in columns.
func checkDoc(c *checks.Check) (string, error) {
	d := *c
	d.State, d.Streak, d.StateChangedAt, d.LastCheckedAt, d.LastStatus, d.LastMessage = "", 0, nil, nil, "", ""
	b, err := json.Marshal(d)
	return string(b), err
}

func checkNameTaken(err error, name string) error {
	if isUniqueViolation(err) {
		return errs.Invalidf("name", "a check named %q exists already", name).WithHint("choose another name")
	}
	return err
}

// CheckCreate inserts c.
func (db *DB) CheckCreate(ctx context.Context, c *checks.Check) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	c.TenantID = sc.tenantID
	doc, err := checkDoc(c)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `INSERT INTO ~checks (id, tenant_id, name, type, server_id, enabled, doc, state, streak, state_changed_at,
		last_checked_at, last_status, last_message, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		c.ID, sc.tenantID, c.Name, string(c.Type), c.ServerID, c.Enabled, doc, string(c.State), c.Streak, c.StateChangedAt,
		c.LastCheckedAt, string(c.LastStatus), c.LastMessage, c.CreatedAt, c.UpdatedAt)
	return checkNameTaken(err, c.Name)
}

// CheckGet returns check id.
func (db *DB) CheckGet(ctx context.Context, id string) (*checks.Check, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	c, err := scanCheck(sc.queryRow(ctx, `SELECT `+checkCols+` FROM ~checks WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return c, notFound(err, "check")
}

// CheckList returns the tenant's checks by name.
func (db *DB) CheckList(ctx context.Context) ([]checks.Check, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+checkCols+` FROM ~checks WHERE tenant_id = ? ORDER BY name, id`, sc.tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []checks.Check
	for rows.Next() {
		c, err := scanCheck(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// CheckUpdate saves c's definition; its state columns are left to CheckRecord.
func (db *DB) CheckUpdate(ctx context.Context, c *checks.Check) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	doc, err := checkDoc(c)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~checks SET name = ?, type = ?, server_id = ?, enabled = ?, doc = ?, updated_at = ? WHERE id = ? AND tenant_id = ?`,
		c.Name, string(c.Type), c.ServerID, c.Enabled, doc, c.UpdatedAt, c.ID, sc.tenantID)
	if err != nil {
		return checkNameTaken(err, c.Name)
	}
	return mustAffect(res, "check")
}

// CheckDelete removes check id, its results and its transitions.
func (db *DB) CheckDelete(ctx context.Context, id string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		res, err := tx.exec(ctx, `DELETE FROM ~checks WHERE id = ? AND tenant_id = ?`, id, sc.tenantID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "check"); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM ~check_results WHERE check_id = ? AND tenant_id = ?`, id, sc.tenantID); err != nil {
			return err
		}
		_, err = tx.exec(ctx, `DELETE FROM ~check_transitions WHERE check_id = ? AND tenant_id = ?`, id, sc.tenantID)
		return err
	})
}

// checkDetail is what a result holds beyond its columns.
type checkDetail struct {
	Method      string `json:"method,omitempty"`
	StatusCode  int    `json:"status_code,omitempty"`
	TLSDaysLeft *int   `json:"tls_days_left,omitempty"`
	ExitCode    *int   `json:"exit_code,omitempty"`
	Warning     string `json:"warning,omitempty"`
}

// CheckRecord saves c's state with result r and transition t (when not nil) in one transaction.
func (db *DB) CheckRecord(ctx context.Context, c *checks.Check, r *checks.Result, t *checks.Transition) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	detail, err := json.Marshal(checkDetail{Method: r.Method, StatusCode: r.StatusCode, TLSDaysLeft: r.TLSDaysLeft, ExitCode: r.ExitCode, Warning: r.Warning})
	if err != nil {
		return err
	}
	r.CheckID = c.ID
	return sc.inTx(ctx, func(tx scopeTx) error {
		res, err := tx.exec(ctx, `UPDATE ~checks SET state = ?, streak = ?, state_changed_at = ?, last_checked_at = ?, last_status = ?,
			last_message = ? WHERE id = ? AND tenant_id = ?`, string(c.State), c.Streak, c.StateChangedAt, c.LastCheckedAt,
			string(c.LastStatus), c.LastMessage, c.ID, sc.tenantID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "check"); err != nil {
			return err
		}
		if err := tx.queryRow(ctx, `INSERT INTO ~check_results (tenant_id, check_id, status, checked_at, duration_ms, lateness_ms, message, detail)
			VALUES (?,?,?,?,?,?,?,?) RETURNING id`, sc.tenantID, c.ID, string(r.Status), r.CheckedAt, r.DurationMS, r.LatenessMS, r.Message,
			string(detail)).Scan(&r.ID); err != nil {
			return err
		}
		if t == nil {
			return nil
		}
		t.CheckID = c.ID
		if err := tx.queryRow(ctx, `INSERT INTO ~check_transitions (tenant_id, check_id, from_state, to_state, at, results, message)
			VALUES (?,?,?,?,?,?,?) RETURNING id`, sc.tenantID, c.ID, string(t.From), string(t.To), t.At, t.Results, t.Message).Scan(&t.ID); err != nil {
			return err
		}
		return tx.outboxFact(ctx, monitor.StreamEvents, monitor.EventCheckTransitioned, strconv.FormatInt(t.ID, 10), t.At,
			checks.TransitionFact(c, t))
	})
}

// CheckResultList returns check id's latest results, newest first.
func (db *DB) CheckResultList(ctx context.Context, checkID string, limit int) ([]checks.Result, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT id, check_id, status, checked_at, duration_ms, lateness_ms, message, detail FROM ~check_results
		WHERE check_id = ? AND tenant_id = ? ORDER BY checked_at DESC, id DESC LIMIT ?`, checkID, sc.tenantID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []checks.Result
	for rows.Next() {
		var r checks.Result
		var status, detail string
		if err := rows.Scan(&r.ID, &r.CheckID, &status, &r.CheckedAt, &r.DurationMS, &r.LatenessMS, &r.Message, &detail); err != nil {
			return nil, err
		}
		var d checkDetail
		if err := json.Unmarshal([]byte(detail), &d); err != nil {
			return nil, fmt.Errorf("check result %d detail: %w", r.ID, err)
		}
		r.Status, r.CheckedAt = checks.State(status), r.CheckedAt.UTC()
		r.Method, r.StatusCode, r.TLSDaysLeft, r.ExitCode, r.Warning = d.Method, d.StatusCode, d.TLSDaysLeft, d.ExitCode, d.Warning
		out = append(out, r)
	}
	return out, rows.Err()
}

// CheckTransitionList returns check id's latest transitions, newest first.
func (db *DB) CheckTransitionList(ctx context.Context, checkID string, limit int) ([]checks.Transition, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT id, check_id, from_state, to_state, at, results, message FROM ~check_transitions
		WHERE check_id = ? AND tenant_id = ? ORDER BY at DESC, id DESC LIMIT ?`, checkID, sc.tenantID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []checks.Transition
	for rows.Next() {
		var t checks.Transition
		var from, to string
		if err := rows.Scan(&t.ID, &t.CheckID, &from, &to, &t.At, &t.Results, &t.Message); err != nil {
			return nil, err
		}
		t.From, t.To, t.At = checks.State(from), checks.State(to), t.At.UTC()
		out = append(out, t)
	}
	return out, rows.Err()
}

// CheckClaim claims slot of check id for this replica: true unless a replica claimed it (or a later one).
func (db *DB) CheckClaim(ctx context.Context, id string, slot time.Time) (bool, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return false, err
	}
	slot = slot.UTC()
	res, err := sc.exec(ctx, `UPDATE ~checks SET claimed_slot = ? WHERE id = ? AND tenant_id = ? AND (claimed_slot IS NULL OR claimed_slot < ?)`,
		slot, id, sc.tenantID, slot)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// CheckResultPrune deletes the tenant's results checked before before.
func (db *DB) CheckResultPrune(ctx context.Context, before time.Time) (int64, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return 0, err
	}
	res, err := sc.exec(ctx, `DELETE FROM ~check_results WHERE tenant_id = ? AND checked_at < ?`, sc.tenantID, before)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
