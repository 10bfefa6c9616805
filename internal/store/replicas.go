package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Replica is a process sharing the database, as it last announced itself.
type Replica struct {
	ID     string
	HasBus bool // it runs with the shared bus (IT0_REDIS_URL)
	// Targets are the deploy targets it runs (api, agent, ops, monitor, comm, voice); none for a tool
	// target such as "bus".
	Targets []string
	SeenAt  time.Time
}

// ReplicaBeat records that replica r is alive at r.SeenAt, and forgets replicas silent since before
// forgetBefore.
func (db *DB) ReplicaBeat(ctx context.Context, r Replica, forgetBefore time.Time) error {
	sc := db.sharedScope()
	return sc.inTx(ctx, func(tx scopeTx) error {
		if _, err := tx.exec(ctx, `INSERT INTO ~replicas (id, has_bus, targets, seen_at) VALUES (?,?,?,?)
			ON CONFLICT (id) DO UPDATE SET has_bus = excluded.has_bus, targets = excluded.targets, seen_at = excluded.seen_at`,
			r.ID, r.HasBus, strings.Join(r.Targets, ","), r.SeenAt); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `DELETE FROM ~replicas WHERE seen_at < ?`, forgetBefore)
		return err
	})
}

// ReplicaList returns the replicas seen since since, other than self ("" lists every one), by id.
func (db *DB) ReplicaList(ctx context.Context, self string, since time.Time) ([]Replica, error) {
	rows, err := db.sharedScope().query(ctx, `SELECT id, has_bus, targets, seen_at FROM ~replicas WHERE id <> ? AND seen_at >= ? ORDER BY id`, self, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Replica
	for rows.Next() {
		var r Replica
		var targets string
		if err := rows.Scan(&r.ID, &r.HasBus, &targets, &r.SeenAt); err != nil {
			return nil, err
		}
		if targets != "" {
			r.Targets = strings.Split(targets, ",")
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReplicaForget removes replica id (at shutdown).
func (db *DB) ReplicaForget(ctx context.Context, id string) error {
	_, err := db.sharedScope().exec(ctx, `DELETE FROM ~replicas WHERE id = ?`, id)
	return err
}

// ReplicaSeen returns when replica id last announced itself (the zero time if it never did or was
// forgotten).
func (db *DB) ReplicaSeen(ctx context.Context, id string) (time.Time, error) {
	var at time.Time
	err := db.sharedScope().queryRow(ctx, `SELECT seen_at FROM ~replicas WHERE id = ?`, id).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	return at, err
}
