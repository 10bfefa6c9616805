package store

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/outbox"
)

var _ approval.Store = (*DB)(nil)

const approvalCols = `id, tenant_id, session_id, command, risk_level, reason, tool, tool_use_id, tool_input, status, requested_by,
	decided_by, decision_reason, decided_at, used_at, expires_at, created_at, origin, origin_id, user_id, decided_via`

func scanApproval(row interface{ Scan(...any) error }) (*approval.Approval, error) {
	var a approval.Approval
	var input string
	if err := row.Scan(&a.ID, &a.TenantID, &a.SessionID, &a.Command, &a.RiskLevel, &a.Reason, &a.Tool, &a.ToolUseID, &input, &a.Status,
		&a.RequestedBy, &a.DecidedBy, &a.DecisionReason, &a.DecidedAt, &a.UsedAt, &a.ExpiresAt, &a.CreatedAt, &a.Origin, &a.OriginID,
		&a.UserID, &a.DecidedVia); err != nil {
		return nil, err
	}
	if input != "" {
		a.ToolInput = json.RawMessage(input)
	}
	a.ExpiresAt, a.CreatedAt = a.ExpiresAt.UTC(), a.CreatedAt.UTC()
	return &a, nil
}

// ApprovalCreate inserts a, with its approval.requested event.
func (db *DB) ApprovalCreate(ctx context.Context, a *approval.Approval) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	a.TenantID = sc.tenantID
	return sc.inTx(ctx, func(tx scopeTx) error {
		if _, err := tx.exec(ctx, `INSERT INTO ~approval_requests (`+approvalCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			a.ID, a.TenantID, a.SessionID, a.Command, a.RiskLevel, a.Reason, a.Tool, a.ToolUseID, string(a.ToolInput), a.Status,
			a.RequestedBy, a.DecidedBy, a.DecisionReason, a.DecidedAt, a.UsedAt, a.ExpiresAt, a.CreatedAt, a.Origin, a.OriginID,
			a.UserID, a.DecidedVia); err != nil {
			return err
		}
		return tx.outboxFact(ctx, outbox.StreamApprovals, approval.EventRequested, a.ID, a.CreatedAt, approval.Fact(a))
	})
}

// ApprovalGet returns approval id.
func (db *DB) ApprovalGet(ctx context.Context, id string) (*approval.Approval, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	a, err := scanApproval(sc.queryRow(ctx, `SELECT `+approvalCols+` FROM ~approval_requests WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return a, notFound(err, "approval")
}

// ApprovalList returns approvals, newest first, optionally of one session and one status.
func (db *DB) ApprovalList(ctx context.Context, sessionID, status string, limit int) ([]approval.Approval, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+approvalCols+` FROM ~approval_requests WHERE tenant_id = ? AND (? = '' OR session_id = ?)
		AND (? = '' OR status = ?) ORDER BY created_at DESC, id LIMIT ?`, sc.tenantID, sessionID, sessionID, status, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []approval.Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// ApprovalDecide stores a's decision if the row is still pending, with its approval.decided event.
func (db *DB) ApprovalDecide(ctx context.Context, a *approval.Approval) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		res, err := tx.exec(ctx, `UPDATE ~approval_requests SET status = ?, decided_by = ?, decision_reason = ?, decided_at = ?, decided_via = ?
		WHERE id = ? AND tenant_id = ? AND status = 'pending'`, a.Status, a.DecidedBy, a.DecisionReason, a.DecidedAt, a.DecidedVia, a.ID, sc.tenantID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.New(errs.Conflict, "approval %s was already decided", a.ID)
		}
		at := db.Now()
		if a.DecidedAt != nil {
			at = *a.DecidedAt
		}
		return tx.outboxFact(ctx, outbox.StreamApprovals, approval.EventDecided, a.ID, at, approval.Fact(a))
	})
}

// ApprovalExpireDue implements approval.Store: one UPDATE … RETURNING decides the due approvals by the
// timeout rule (approval.Approval.Expire, kept equal by TestExpireRule), then their audit entries and
// approval.decided events are appended, all in one transaction. On PostgreSQL the rows are taken with
// SKIP LOCKED: a second sweeper running at the same moment takes other rows, or none, and never waits.
func (db *DB) ApprovalExpireDue(ctx context.Context, p approval.ExpireParams) ([]approval.Approval, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	if p.Limit <= 0 {
		p.Limit = 1000
	}
	now := p.Now.UTC()
	lock := ""
	if sc.pg {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []approval.Approval
	var entries []*audit.Entry
	appendEntries := func(tx scopeTx) error {
		rows, err := tx.query(ctx, `UPDATE ~approval_requests SET
			status = CASE WHEN risk_level <= 1 AND origin <> ? THEN ? ELSE ? END,
			decision_reason = CASE WHEN risk_level <= 1 AND origin <> ? THEN ? ELSE ? END,
			decided_by = ?, decided_at = ?
			WHERE id IN (SELECT id FROM ~approval_requests WHERE tenant_id = ? AND status = 'pending' AND expires_at <= ?
				ORDER BY expires_at LIMIT ?`+lock+`) AND status = 'pending'
			RETURNING `+approvalCols,
			approval.OriginStandingOrder, approval.Approved, approval.Expired,
			approval.OriginStandingOrder, approval.ReasonTimeoutApproved, approval.ReasonTimeoutRejected,
			approval.DecidedByTimeout, now, sc.tenantID, now, p.Limit)
		if err != nil {
			return fmt.Errorf("decide due approvals: %w", err)
		}
		out = out[:0]
		for rows.Next() {
			a, err := scanApproval(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, *a)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(out) == 0 {
			return err
		}
		slices.SortFunc(out, func(a, b approval.Approval) int {
			return cmpTimeThenID(a.ExpiresAt, b.ExpiresAt, a.ID, b.ID)
		})
		entries = entries[:0]
		for i := range out {
			e, err := p.Audit.Entry(ctx, approval.TimedOutRecord(&out[i]))
			if err != nil {
				return err
			}
			entries = append(entries, e)
		}
		if err := auditAppendBatch(ctx, tx, entries, p.Audit); err != nil {
			return err
		}
		evs := make([]outboxRow, len(out))
		for i := range out {
			b, err := outbox.Encode(approval.EventDecided, sc.tenantID, out[i].ID, now, approval.Fact(&out[i]))
			if err != nil {
				return fmt.Errorf("encode approval.decided: %w", err)
			}
			evs[i] = outboxRow{stream: outbox.StreamApprovals, payload: b}
		}
		return tx.outboxAddBatch(ctx, evs, now)
	}
	if sc.pg {
		err = sc.inTx(ctx, appendEntries)
		return out, err
	}
	// SQLite: this process keeps the chain's head in memory (AuditAppend); hold it while the batch is
	// appended, then record where the chain ends.
	h := db.auditHead(sc.tenantID)
	h.mu.Lock()
	defer h.mu.Unlock()
	err = sc.inTx(ctx, appendEntries)
	h.known = false
	if err == nil && len(entries) > 0 {
		last := entries[len(entries)-1]
		h.seq, h.hash, h.known = last.Seq, last.Hash, true
	}
	return out, err
}

func cmpTimeThenID(a, b time.Time, aid, bid string) int {
	if c := a.Compare(b); c != 0 {
		return c
	}
	return strings.Compare(aid, bid)
}

// ApprovalNextExpiry returns when the earliest pending approval expires.
func (db *DB) ApprovalNextExpiry(ctx context.Context) (time.Time, bool, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	var at time.Time
	err = sc.queryRow(ctx, `SELECT expires_at FROM ~approval_requests WHERE tenant_id = ? AND status = 'pending' ORDER BY expires_at LIMIT 1`,
		sc.tenantID).Scan(&at)
	if isNoRows(err) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return at.UTC(), true, nil
}

// ApprovalUse marks decided approval id used (a grant consumed, or a decision handed to the engine), once.
func (db *DB) ApprovalUse(ctx context.Context, id string, at time.Time) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~approval_requests SET used_at = ? WHERE id = ? AND tenant_id = ? AND status <> 'pending' AND used_at IS NULL`,
		at, id, sc.tenantID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.New(errs.Conflict, "approval %s is pending or already used", id)
	}
	return nil
}

// ApprovalSetToolUse records the engine tool call approval id answers.
func (db *DB) ApprovalSetToolUse(ctx context.Context, id, toolUseID string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~approval_requests SET tool_use_id = ? WHERE id = ? AND tenant_id = ?`, toolUseID, id, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "approval")
}

// auditSealer seals entries appended in a batch (audit.Log).
type auditSealer interface {
	Sum(prev []byte, e *audit.Entry) []byte
	HeadMAC(chain string, seq int64, hash []byte) []byte
}

// auditRowsPerInsert bounds one multi-row insert of audit entries (14 parameters each).
const auditRowsPerInsert = 500

// auditAppendBatch appends entries to the chain of tx's tenant, in tx, in order: it locks the chain (on
// PostgreSQL), reads its head, seals each entry after the one before, inserts them many rows per
// statement and anchors the head once, at the last. On SQLite the caller holds the chain's in-memory head.
func auditAppendBatch(ctx context.Context, tx scopeTx, entries []*audit.Entry, seal auditSealer) error {
	if len(entries) == 0 {
		return nil
	}
	if tx.s.pg {
		h := fnv.New64a()
		h.Write([]byte(tx.s.prefix))
		if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(h.Sum64())); err != nil {
			return fmt.Errorf("lock audit chain: %w", err)
		}
	}
	var prev []byte
	var seq int64
	err := tx.queryRow(ctx, `SELECT seq, hash FROM ~audit_logs ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && !isNoRows(err) {
		return fmt.Errorf("read audit head: %w", err)
	}
	if prev == nil {
		prev = []byte{}
	}
	for _, e := range entries {
		e.TenantID = tx.s.tenantID
		seq++
		e.Seq, e.PrevHash = seq, prev
		e.Hash = seal.Sum(e.PrevHash, e)
		prev = e.Hash
	}
	if tx.s.pg {
		// One statement of arrays: PostgreSQL parses and plans it once for the whole batch.
		seqs, tenants, actions, actorTypes, actorIDs, resTypes, resIDs, descs, details, ips, reqs := make([]int64, len(entries)),
			make([]string, len(entries)), make([]string, len(entries)), make([]string, len(entries)), make([]string, len(entries)),
			make([]string, len(entries)), make([]string, len(entries)), make([]string, len(entries)), make([]string, len(entries)),
			make([]string, len(entries)), make([]string, len(entries))
		ats, prevs, hashes := make([]time.Time, len(entries)), make([][]byte, len(entries)), make([][]byte, len(entries))
		for i, e := range entries {
			seqs[i], tenants[i], actions[i], actorTypes[i], actorIDs[i], resTypes[i], resIDs[i], descs[i] = e.Seq, e.TenantID, e.ActionType,
				e.ActorType, e.ActorID, e.ResourceType, e.ResourceID, e.Description
			details[i], ips[i], reqs[i], ats[i], prevs[i], hashes[i] = string(e.Detail), e.IPAddress, e.RequestID, e.CreatedAt, e.PrevHash, e.Hash
		}
		if _, err := tx.exec(ctx, `INSERT INTO ~audit_logs (seq, tenant_id, action_type, actor_type, actor_id, resource_type,
			resource_id, description, detail, ip_address, request_id, created_at, prev_hash, hash)
			SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
				?::text[], ?::text[], ?::timestamptz[], ?::bytea[], ?::bytea[])`,
			seqs, tenants, actions, actorTypes, actorIDs, resTypes, resIDs, descs, details, ips, reqs, ats, prevs, hashes); err != nil {
			return fmt.Errorf("insert audit entries: %w", err)
		}
	}
	const row = `(?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
	for start := 0; start < len(entries) && !tx.s.pg; start += auditRowsPerInsert {
		chunk := entries[start:min(start+auditRowsPerInsert, len(entries))]
		args := make([]any, 0, len(chunk)*14)
		for _, e := range chunk {
			args = append(args, e.Seq, e.TenantID, e.ActionType, e.ActorType, e.ActorID, e.ResourceType, e.ResourceID, e.Description,
				string(e.Detail), e.IPAddress, e.RequestID, e.CreatedAt, e.PrevHash, e.Hash)
		}
		if _, err := tx.exec(ctx, `INSERT INTO ~audit_logs (seq, tenant_id, action_type, actor_type, actor_id, resource_type,
			resource_id, description, detail, ip_address, request_id, created_at, prev_hash, hash) VALUES `+
			row+strings.Repeat(","+row, len(chunk)-1), args...); err != nil {
			return fmt.Errorf("insert audit entries: %w", err)
		}
	}
	last := entries[len(entries)-1]
	return auditAnchor(ctx, tx, last, func(seq int64, hash []byte) []byte { return seal.HeadMAC(last.TenantID, seq, hash) })
}

// outboxRow is one domain event to write.
type outboxRow struct {
	stream  string
	payload []byte
}

// outboxRowsPerInsert bounds one multi-row insert of outbox rows (4 parameters each).
const outboxRowsPerInsert = 1000

// outboxAddBatch writes many domain events in tx, in order, many rows per statement.
func (t scopeTx) outboxAddBatch(ctx context.Context, evs []outboxRow, at time.Time) error {
	if t.s.pg {
		// One statement of arrays: PostgreSQL parses and plans it once for the whole batch.
		streams, payloads := make([]string, len(evs)), make([][]byte, len(evs))
		for i, e := range evs {
			streams[i], payloads[i] = e.stream, e.payload
		}
		if _, err := t.exec(ctx, `INSERT INTO ~outbox (tenant_id, stream, payload, created_at)
			SELECT ?, s, p, ? FROM unnest(?::text[], ?::bytea[]) AS x(s, p)`, t.s.tenantID, at, streams, payloads); err != nil {
			return fmt.Errorf("insert outbox rows: %w", err)
		}
		return nil
	}
	const row = `(?,?,?,?)`
	for start := 0; start < len(evs); start += outboxRowsPerInsert {
		chunk := evs[start:min(start+outboxRowsPerInsert, len(evs))]
		args := make([]any, 0, len(chunk)*4)
		for _, e := range chunk {
			args = append(args, t.s.tenantID, e.stream, e.payload, at)
		}
		if _, err := t.exec(ctx, `INSERT INTO ~outbox (tenant_id, stream, payload, created_at) VALUES `+row+strings.Repeat(","+row, len(chunk)-1),
			args...); err != nil {
			return fmt.Errorf("insert outbox rows: %w", err)
		}
	}
	return nil
}
