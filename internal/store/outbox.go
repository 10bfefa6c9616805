package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/tenant"
)

var _ outbox.Store = (*DB)(nil)

// outboxAdd writes a domain event in tx, the transaction of the change it reports.
func (t scopeTx) outboxAdd(ctx context.Context, stream string, payload []byte, at time.Time) error {
	_, err := t.exec(ctx, `INSERT INTO ~outbox (tenant_id, stream, payload, created_at) VALUES (?,?,?,?)`,
		t.s.tenantID, stream, payload, at)
	return err
}

// outboxFact writes the envelope of fact typ about subject in tx.
func (t scopeTx) outboxFact(ctx context.Context, stream, typ, subject string, at time.Time, data any) error {
	b, err := outbox.Encode(typ, t.s.tenantID, subject, at, data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", typ, err)
	}
	return t.outboxAdd(ctx, stream, b, at)
}

// OutboxAdd writes a domain event of the tenant in ctx on its own, for facts that change no row here.
func (db *DB) OutboxAdd(ctx context.Context, stream string, payload []byte) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error { return tx.outboxAdd(ctx, stream, payload, db.Now()) })
}

// OutboxRelay implements outbox.Store. On PostgreSQL a transaction-scoped advisory lock on the tenant's
// schema makes one relay at a time publish a tenant's rows, in order; the others skip the tenant.
func (db *DB) OutboxRelay(ctx context.Context, limit int, publish func(context.Context, []outbox.Event) error) (int, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	err = sc.inTx(ctx, func(tx scopeTx) error {
		n = 0
		if sc.pg {
			var locked bool
			if err := tx.queryRow(ctx, `SELECT pg_try_advisory_xact_lock(?)`, outboxLockKey(sc.prefix)).Scan(&locked); err != nil {
				return fmt.Errorf("outbox lock: %w", err)
			}
			if !locked {
				return nil
			}
		}
		rows, err := tx.query(ctx, `SELECT id, tenant_id, stream, payload, created_at FROM ~outbox WHERE tenant_id = ? ORDER BY id LIMIT ?`,
			sc.tenantID, limit)
		if err != nil {
			return err
		}
		var evs []outbox.Event
		for rows.Next() {
			var e outbox.Event
			if err := rows.Scan(&e.ID, &e.TenantID, &e.Stream, &e.Payload, &e.CreatedAt); err != nil {
				rows.Close()
				return err
			}
			evs = append(evs, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(evs) == 0 {
			return err
		}
		if err := publish(ctx, evs); err != nil {
			return err
		}
		// Delete exactly what was published: a transaction that took a lower id may commit later.
		ids := make([]any, 0, len(evs)+1)
		ids = append(ids, sc.tenantID)
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		if _, err := tx.exec(ctx, `DELETE FROM ~outbox WHERE tenant_id = ? AND id IN (?`+strings.Repeat(",?", len(evs)-1)+`)`, ids...); err != nil {
			return err
		}
		n = len(evs)
		return nil
	})
	return n, err
}

// outboxLockKey is the advisory lock key of a tenant's outbox: a hash of its schema.
func outboxLockKey(prefix string) int64 {
	h := fnv.New64a()
	h.Write([]byte("it0-outbox:" + prefix))
	return int64(h.Sum64())
}

// OutboxWaiting implements outbox.Store: of ids, the tenants whose outbox holds rows. On PostgreSQL one
// statement probes up to 200 tenants' schemas; a probe that fails names all of its tenants, so the relay
// visits them and reports what is wrong rather than skipping them.
func (db *DB) OutboxWaiting(ctx context.Context, ids []string) ([]string, error) {
	var out []string
	if db.dialect != Postgres {
		for _, id := range ids {
			sc, err := db.scope(tenant.WithID(ctx, id))
			var n int
			if err == nil {
				err = sc.queryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM ~outbox LIMIT 1)`).Scan(&n)
			}
			if err != nil || n > 0 {
				out = append(out, id)
			}
		}
		return out, ctx.Err()
	}
	for start := 0; start < len(ids); start += 200 {
		chunk := ids[start:min(len(ids), start+200)]
		var probes []string
		args := make([]any, 0, len(chunk))
		for _, id := range chunk {
			if !tenant.ValidID(id) {
				out = append(out, id) // its drain says what is wrong
				continue
			}
			probes = append(probes, fmt.Sprintf(`SELECT $%d::text WHERE EXISTS (SELECT 1 FROM "%s".outbox)`, len(args)+1, db.tenantSchema(id)))
			args = append(args, id)
		}
		if len(probes) == 0 {
			continue
		}
		rows, err := db.shared.QueryContext(ctx, strings.Join(probes, " UNION ALL "), args...)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			out = append(out, chunk...)
			continue
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
