package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops"
)

var _ ops.OrderStore = (*DB)(nil)

// StandingOrderCreate stores o under the next id of its day (SO-YYYYMMDD-NNN).
func (db *DB) StandingOrderCreate(ctx context.Context, o *ops.StandingOrder) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	o.TenantID = sc.tenantID
	return sc.inTx(ctx, func(tx scopeTx) error {
		prefix := ops.StandingOrderID(o.CreatedAt, 0)
		prefix = prefix[:len(prefix)-3]
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM ~standing_orders WHERE tenant_id = ? AND id LIKE ?`, sc.tenantID, prefix+"%").Scan(&n); err != nil {
			return err
		}
		o.ID = ops.StandingOrderID(o.CreatedAt, n+1)
		doc, err := json.Marshal(o)
		if err != nil {
			return err
		}
		_, err = tx.exec(ctx, `INSERT INTO ~standing_orders (id, tenant_id, name, status, doc, created_at, updated_at) VALUES (?,?,?,?,?,?,?)`,
			o.ID, sc.tenantID, o.Name, o.Status, string(doc), o.CreatedAt, o.UpdatedAt)
		return err
	})
}

// StandingOrderGet returns order id.
func (db *DB) StandingOrderGet(ctx context.Context, id string) (*ops.StandingOrder, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	var doc string
	if err := sc.queryRow(ctx, `SELECT doc FROM ~standing_orders WHERE id = ? AND tenant_id = ?`, id, sc.tenantID).Scan(&doc); err != nil {
		return nil, notFound(err, "standing order")
	}
	var o ops.StandingOrder
	if err := json.Unmarshal([]byte(doc), &o); err != nil {
		return nil, fmt.Errorf("standing order %s: %w", id, err)
	}
	return &o, nil
}

// StandingOrderList returns orders, optionally with one status, newest first.
func (db *DB) StandingOrderList(ctx context.Context, status string) ([]ops.StandingOrder, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT doc FROM ~standing_orders WHERE tenant_id = ? AND (? = '' OR status = ?) ORDER BY created_at DESC, id DESC`,
		sc.tenantID, status, status)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ops.StandingOrder
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var o ops.StandingOrder
		if err := json.Unmarshal([]byte(doc), &o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// StandingOrderUpdate saves o.
func (db *DB) StandingOrderUpdate(ctx context.Context, o *ops.StandingOrder) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	doc, err := json.Marshal(o)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~standing_orders SET name = ?, status = ?, doc = ?, updated_at = ? WHERE id = ? AND tenant_id = ?`,
		o.Name, o.Status, string(doc), o.UpdatedAt, o.ID, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "standing order")
}

const execCols = `id, tenant_id, order_id, status, trigger_type, trigger_context, session_id, summary, actions_taken, error, escalation,
	human_response, started_at, finished_at`

func scanExecution(row interface{ Scan(...any) error }) (*ops.Execution, error) {
	var e ops.Execution
	var tc, actions, esc, human string
	if err := row.Scan(&e.ID, &e.TenantID, &e.OrderID, &e.Status, &e.TriggerType, &tc, &e.SessionID, &e.Summary, &actions, &e.Error,
		&esc, &human, &e.StartedAt, &e.FinishedAt); err != nil {
		return nil, err
	}
	e.TriggerContext, e.ActionsTaken = json.RawMessage(tc), json.RawMessage(actions)
	if esc != "" {
		e.Escalation = json.RawMessage(esc)
	}
	if human != "" {
		e.HumanResponse = json.RawMessage(human)
	}
	return &e, nil
}

// ExecutionCreate inserts e unless the order already has an execution with e's TriggerKey
// (ops.ErrTriggered: the event was handled) or a run of the same order is still open (errs.Conflict: an
// overlapping trigger is skipped, not doubled).
func (db *DB) ExecutionCreate(ctx context.Context, e *ops.Execution) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	e.TenantID = sc.tenantID
	var key any
	if e.TriggerKey != "" {
		key = e.TriggerKey
	}
	err = sc.inTx(ctx, func(tx scopeTx) error {
		if sc.pg {
			// Creations for one order take turns: under READ COMMITTED two triggers at once would both find
			// no open run and start overlapping ones. (SQLite's writers are serial already.)
			if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(?))`, "standing-order-exec/"+sc.tenantID+"/"+e.OrderID); err != nil {
				return fmt.Errorf("lock the order's executions: %w", err)
			}
		}
		if key != nil {
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM ~standing_order_executions WHERE order_id = ? AND tenant_id = ? AND trigger_key = ?`,
				e.OrderID, sc.tenantID, key).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return ops.ErrTriggered
			}
		}
		var open int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM ~standing_order_executions WHERE order_id = ? AND tenant_id = ?
			AND status IN ('running', 'awaiting_human')`, e.OrderID, sc.tenantID).Scan(&open); err != nil {
			return err
		}
		if open > 0 && e.Status == ops.ExecRunning {
			return errs.New(errs.Conflict, "a run of %s is still going", e.OrderID)
		}
		_, err := tx.exec(ctx, `INSERT INTO ~standing_order_executions (`+execCols+`, trigger_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			e.ID, sc.tenantID, e.OrderID, e.Status, e.TriggerType, string(orEmpty(e.TriggerContext, "{}")), e.SessionID, e.Summary,
			string(orEmpty(e.ActionsTaken, "[]")), e.Error, string(e.Escalation), string(e.HumanResponse), e.StartedAt, e.FinishedAt, key)
		return err
	})
	if key != nil && isUniqueViolation(err) {
		// Two replicas handled the same event at once: the other one recorded it.
		return ops.ErrTriggered
	}
	return err
}

func orEmpty(b json.RawMessage, def string) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage(def)
	}
	return b
}

// ExecutionUpdate saves e's progress.
func (db *DB) ExecutionUpdate(ctx context.Context, e *ops.Execution) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~standing_order_executions SET status = ?, session_id = ?, summary = ?, actions_taken = ?, error = ?,
		escalation = ?, human_response = ?, finished_at = ? WHERE id = ? AND tenant_id = ?`, e.Status, e.SessionID, e.Summary,
		string(orEmpty(e.ActionsTaken, "[]")), e.Error, string(e.Escalation), string(e.HumanResponse), e.FinishedAt, e.ID, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "execution")
}

// ExecutionMirror implements ops.OrderStore: ExecutionUpdate only if the execution has not mirrored
// run end p.Run of its session or a later one, then remembers p.Run, writes p.Executed's event to the
// outbox and appends p.Audit, all in one transaction. It reports whether it updated.
func (db *DB) ExecutionMirror(ctx context.Context, p ops.MirrorParams) (bool, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return false, err
	}
	e := p.Execution
	won := false
	mirror := func(tx scopeTx) error {
		won = false
		res, err := tx.exec(ctx, `UPDATE ~standing_order_executions SET status = ?, session_id = ?, summary = ?, actions_taken = ?,
			error = ?, escalation = ?, human_response = ?, finished_at = ?, session_run = ? WHERE id = ? AND tenant_id = ? AND session_run < ?`,
			e.Status, e.SessionID, e.Summary, string(orEmpty(e.ActionsTaken, "[]")), e.Error, string(e.Escalation), string(e.HumanResponse),
			e.FinishedAt, p.Run, e.ID, sc.tenantID, p.Run)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		won = true
		if p.Executed != nil {
			if err := tx.outboxFact(ctx, ops.StreamEvents, ops.EventExecuted, fmt.Sprintf("%s:%d", e.ID, p.Run), db.Now(), p.Executed); err != nil {
				return fmt.Errorf("write the %s event: %w", ops.EventExecuted, err)
			}
		}
		if p.Audit == nil {
			return nil
		}
		return auditAppendBatch(ctx, tx, []*audit.Entry{p.Audit}, p.Seal)
	}
	if sc.pg || p.Audit == nil {
		err = sc.inTx(ctx, mirror)
		return won, err
	}
	// SQLite: this process keeps the chain's head in memory (AuditAppend); hold it while the entry is
	// appended, then record where the chain ends.
	h := db.auditHead(sc.tenantID)
	h.mu.Lock()
	defer h.mu.Unlock()
	err = sc.inTx(ctx, mirror)
	h.known = false
	if err == nil && won {
		h.seq, h.hash, h.known = p.Audit.Seq, p.Audit.Hash, true
	}
	return won, err
}

// ExecutionGet returns execution id.
func (db *DB) ExecutionGet(ctx context.Context, id string) (*ops.Execution, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	e, err := scanExecution(sc.queryRow(ctx, `SELECT `+execCols+` FROM ~standing_order_executions WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return e, notFound(err, "execution")
}

// ExecutionList returns an order's runs (every order's when orderID is empty), newest first; status
// narrows to one status.
func (db *DB) ExecutionList(ctx context.Context, orderID, status string, limit int) ([]ops.Execution, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+execCols+` FROM ~standing_order_executions WHERE tenant_id = ? AND (? = '' OR order_id = ?)
		AND (? = '' OR status = ?) ORDER BY started_at DESC, id LIMIT ?`, sc.tenantID, orderID, orderID, status, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ops.Execution
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, rows.Err()
}

// ThresholdUpdate implements ops.OrderStore. On PostgreSQL the row is created if missing and locked
// (SELECT … FOR UPDATE) for the transaction; SQLite's writers are serial already.
func (db *DB) ThresholdUpdate(ctx context.Context, orderID, serverID string, f func(*ops.ThresholdState)) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		if _, err := tx.exec(ctx, `INSERT INTO ~threshold_states (tenant_id, order_id, server_id) VALUES (?,?,?)
			ON CONFLICT (order_id, server_id) DO NOTHING`, sc.tenantID, orderID, serverID); err != nil {
			return err
		}
		lock := ""
		if sc.pg {
			lock = " FOR UPDATE"
		}
		var since, fired, last sql.NullTime
		if err := tx.queryRow(ctx, `SELECT since, fired_since, last_at FROM ~threshold_states WHERE order_id = ? AND server_id = ? AND tenant_id = ?`+lock,
			orderID, serverID, sc.tenantID).Scan(&since, &fired, &last); err != nil {
			return err
		}
		st := ops.ThresholdState{Since: utcOrZero(since), Fired: utcOrZero(fired), LastAt: utcOrZero(last)}
		f(&st)
		_, err := tx.exec(ctx, `UPDATE ~threshold_states SET since = ?, fired_since = ?, last_at = ? WHERE order_id = ? AND server_id = ? AND tenant_id = ?`,
			sqlTime(st.Since), sqlTime(st.Fired), sqlTime(st.LastAt), orderID, serverID, sc.tenantID)
		return err
	})
}

// utcOrZero reads NULL as the zero time.
func utcOrZero(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// sqlTime stores the zero time as NULL.
func sqlTime(t time.Time) sql.NullTime {
	return sql.NullTime{Time: t.UTC(), Valid: !t.IsZero()}
}
