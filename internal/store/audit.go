package store

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"

	"github.com/it0/it0/internal/audit"
)

var _ audit.Store = (*DB)(nil)

const auditCols = `id, seq, tenant_id, action_type, actor_type, actor_id, resource_type, resource_id, description,
	detail, ip_address, request_id, created_at, prev_hash, hash`

func scanAudit(row interface{ Scan(...any) error }, e *audit.Entry) error {
	var detail string
	err := row.Scan(&e.ID, &e.Seq, &e.TenantID, &e.ActionType, &e.ActorType, &e.ActorID, &e.ResourceType,
		&e.ResourceID, &e.Description, &detail, &e.IPAddress, &e.RequestID, &e.CreatedAt, &e.PrevHash, &e.Hash)
	if err != nil {
		return err
	}
	e.CreatedAt = e.CreatedAt.UTC()
	e.Detail = nil
	if detail != "" {
		e.Detail = []byte(detail)
	}
	return nil
}

// AuditAppend appends e to the chain of the tenant in ctx. Inside one transaction it reads the chain's head,
// sets e.Seq and e.PrevHash, stores e with the MAC that sum computes, and anchors the chain's new head with
// the MAC that headMAC computes.
func (db *DB) AuditAppend(ctx context.Context, e *audit.Entry, sum func(prev []byte, e *audit.Entry) []byte,
	headMAC func(seq int64, hash []byte) []byte) error {
	s, err := db.scope(ctx)
	if err != nil {
		return err
	}
	e.TenantID = s.tenantID
	if s.pg {
		return db.auditAppendTx(ctx, s, e, sum, headMAC)
	}
	// SQLite: a file belongs to this process, so the chain's head can be kept in memory and an append is
	// one insert and one upsert. seq is unique: if anything else appended meanwhile, the insert fails and
	// the head is read again from the table.
	h := db.auditHead(s.tenantID)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.known {
		e.Seq, e.PrevHash = h.seq+1, h.hash
		e.Hash = sum(e.PrevHash, e)
		err := s.inTx(ctx, func(tx scopeTx) error {
			if err := auditInsert(ctx, tx, e); err != nil {
				return err
			}
			return auditAnchor(ctx, tx, e, headMAC)
		})
		if err == nil {
			h.seq, h.hash = e.Seq, e.Hash
			return nil
		}
		h.known = false
	}
	if err := db.auditAppendTx(ctx, s, e, sum, headMAC); err != nil {
		return err
	}
	h.seq, h.hash, h.known = e.Seq, e.Hash, true
	return nil
}

// auditAnchor moves the chain's head to e (never backwards).
func auditAnchor(ctx context.Context, tx scopeTx, e *audit.Entry, headMAC func(seq int64, hash []byte) []byte) error {
	_, err := tx.exec(ctx, `INSERT INTO ~audit_heads AS h (chain, seq, hash, mac, updated_at) VALUES (?,?,?,?,?)
		ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac,
		updated_at = excluded.updated_at WHERE excluded.seq > h.seq`,
		e.TenantID, e.Seq, e.Hash, headMAC(e.Seq, e.Hash), e.CreatedAt)
	if err != nil {
		return fmt.Errorf("anchor audit head: %w", err)
	}
	return nil
}

// AuditHead returns the anchored head of the chain of the tenant in ctx, or nil when there is none.
func (db *DB) AuditHead(ctx context.Context) (*audit.Head, error) {
	s, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	h := audit.Head{Chain: s.tenantID}
	err = s.queryRow(ctx, `SELECT seq, hash, mac, updated_at FROM ~audit_heads WHERE chain = ?`, s.tenantID).
		Scan(&h.Seq, &h.Hash, &h.MAC, &h.UpdatedAt)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit head: %w", err)
	}
	h.UpdatedAt = h.UpdatedAt.UTC()
	return &h, nil
}

// auditHead is the last entry of one SQLite audit chain, as this process appended it.
type auditHead struct {
	mu    sync.Mutex
	known bool
	seq   int64
	hash  []byte
}

func (db *DB) auditHead(chain string) *auditHead {
	v, _ := db.auditHeads.LoadOrStore(chain, &auditHead{})
	return v.(*auditHead)
}

// auditInsert stores e, whose seq and hashes are set.
func auditInsert(ctx context.Context, q interface {
	queryRow(ctx context.Context, query string, args ...any) *sql.Row
}, e *audit.Entry) error {
	err := q.queryRow(ctx, `INSERT INTO ~audit_logs (seq, tenant_id, action_type, actor_type, actor_id, resource_type,
		resource_id, description, detail, ip_address, request_id, created_at, prev_hash, hash)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`,
		e.Seq, e.TenantID, e.ActionType, e.ActorType, e.ActorID, e.ResourceType, e.ResourceID, e.Description,
		string(e.Detail), e.IPAddress, e.RequestID, e.CreatedAt, e.PrevHash, e.Hash).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("insert audit entry: %w", err)
	}
	return nil
}

// auditAppendTx appends e after reading the chain's head, in one transaction.
func (db *DB) auditAppendTx(ctx context.Context, s scope, e *audit.Entry, sum func(prev []byte, e *audit.Entry) []byte,
	headMAC func(seq int64, hash []byte) []byte) error {
	return s.inTx(ctx, func(tx scopeTx) error {
		if s.pg {
			// Appends to one chain must be serial; a transaction-scoped advisory lock per chain does that
			// without blocking readers or other tenants.
			h := fnv.New64a()
			h.Write([]byte(s.prefix))
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
		e.Seq = seq + 1
		e.PrevHash = prev
		if e.PrevHash == nil {
			e.PrevHash = []byte{}
		}
		e.Hash = sum(e.PrevHash, e)
		if err := auditInsert(ctx, tx, e); err != nil {
			return err
		}
		return auditAnchor(ctx, tx, e, headMAC)
	})
}

// AuditList returns entries of the tenant in ctx matching f, newest first, at most f.Limit of them.
func (db *DB) AuditList(ctx context.Context, f audit.Filter) ([]audit.Entry, error) {
	s, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.ActionType != "" {
		add("action_type = ?", f.ActionType)
	}
	if f.ActorID != "" {
		add("actor_id = ?", f.ActorID)
	}
	if f.ResourceType != "" {
		add("resource_type = ?", f.ResourceType)
	}
	if f.ResourceID != "" {
		add("resource_id = ?", f.ResourceID)
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		add("created_at < ?", f.Until)
	}
	if f.BeforeSeq > 0 {
		add("seq < ?", f.BeforeSeq)
	}
	q := `SELECT ` + auditCols + ` FROM ~audit_logs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC LIMIT ?"
	args = append(args, f.Limit)
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		if err := scanAudit(rows, &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditScan calls fn for every entry of the tenant in ctx in chain order (by seq, then id), streaming.
func (db *DB) AuditScan(ctx context.Context, fn func(*audit.Entry) error) error {
	s, err := db.scope(ctx)
	if err != nil {
		return err
	}
	rows, err := s.query(ctx, `SELECT `+auditCols+` FROM ~audit_logs ORDER BY seq, id`)
	if err != nil {
		return fmt.Errorf("scan audit: %w", err)
	}
	defer rows.Close()
	var e audit.Entry
	for rows.Next() {
		if err := scanAudit(rows, &e); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}
