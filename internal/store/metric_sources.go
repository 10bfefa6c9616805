package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/monitor/metrics"
)

// MetricSourceCreate inserts s; errs.Conflict when the name is taken.
func (db *DB) MetricSourceCreate(ctx context.Context, s *metrics.Source) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	s.TenantID = sc.tenantID
	doc, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `INSERT INTO ~metric_sources (id, tenant_id, name, type, doc, created_at, updated_at) VALUES (?,?,?,?,?,?,?)`,
		s.ID, sc.tenantID, s.Name, s.Type, string(doc), s.CreatedAt, s.UpdatedAt)
	return uniqueConflict(err, "a metric source named "+s.Name)
}

// uniqueConflict maps a unique-constraint violation to errs.Conflict.
func uniqueConflict(err error, what string) error {
	if isUniqueViolation(err) {
		return errs.New(errs.Conflict, "%s already exists", what)
	}
	return err
}

// MetricSourceGet returns source id.
func (db *DB) MetricSourceGet(ctx context.Context, id string) (*metrics.Source, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	return getDoc[metrics.Source](ctx, sc, "metric source", `SELECT doc FROM ~metric_sources WHERE id = ? AND tenant_id = ?`, id, sc.tenantID)
}

// MetricSourceList returns every source, by name.
func (db *DB) MetricSourceList(ctx context.Context) ([]metrics.Source, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	return listDocs[metrics.Source](ctx, sc, `SELECT doc FROM ~metric_sources WHERE tenant_id = ? ORDER BY name`, sc.tenantID)
}

// MetricSourceUpdate saves s.
func (db *DB) MetricSourceUpdate(ctx context.Context, s *metrics.Source) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	doc, err := json.Marshal(s)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~metric_sources SET name = ?, type = ?, doc = ?, updated_at = ? WHERE id = ? AND tenant_id = ?`,
		s.Name, s.Type, string(doc), s.UpdatedAt, s.ID, sc.tenantID)
	if err != nil {
		return uniqueConflict(err, "a metric source named "+s.Name)
	}
	return mustAffect(res, "metric source")
}

// MetricSourceCollected records a collection on source id without overwriting concurrent edits.
func (db *DB) MetricSourceCollected(ctx context.Context, id string, at time.Time, lastError string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		lock := "" // SQLite's write transactions are already serial (BEGIN IMMEDIATE)
		if sc.pg {
			lock = " FOR UPDATE"
		}
		var doc string
		if err := tx.queryRow(ctx, `SELECT doc FROM ~metric_sources WHERE id = ? AND tenant_id = ?`+lock, id, sc.tenantID).Scan(&doc); err != nil {
			return notFound(err, "metric source")
		}
		var s metrics.Source
		if err := json.Unmarshal([]byte(doc), &s); err != nil {
			return err
		}
		s.LastCollectedAt, s.LastError = &at, lastError
		b, err := json.Marshal(&s)
		if err != nil {
			return err
		}
		_, err = tx.exec(ctx, `UPDATE ~metric_sources SET doc = ? WHERE id = ? AND tenant_id = ?`, string(b), id, sc.tenantID)
		return err
	})
}

// MetricSourceClaim takes source id's collection due at now: it moves next_due_at to next unless it is
// still in the future, and reports whether this caller won (one replica collects each round).
func (db *DB) MetricSourceClaim(ctx context.Context, id string, now, next time.Time) (bool, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return false, err
	}
	res, err := sc.exec(ctx, `UPDATE ~metric_sources SET next_due_at = ? WHERE id = ? AND tenant_id = ? AND (next_due_at IS NULL OR next_due_at <= ?)`,
		next.UTC(), id, sc.tenantID, now.UTC())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// MetricSourceDelete removes source id.
func (db *DB) MetricSourceDelete(ctx context.Context, id string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `DELETE FROM ~metric_sources WHERE id = ? AND tenant_id = ?`, id, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "metric source")
}
