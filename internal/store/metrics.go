package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/metrics"
)

var _ metrics.Store = (*DB)(nil)

// insertBatch bounds the rows of one multi-row INSERT (6 parameters each, far below both backends'
// placeholder limits).
const insertBatch = 500

// MetricInsert stores samples in one transaction.
func (db *DB) MetricInsert(ctx context.Context, samples []monitor.Sample) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		for start := 0; start < len(samples); start += insertBatch {
			chunk := samples[start:min(start+insertBatch, len(samples))]
			var b strings.Builder
			b.WriteString(`INSERT INTO ~metric_snapshots (tenant_id, server_id, metric_type, label, value, collected_at) VALUES `)
			args := make([]any, 0, len(chunk)*6)
			for i, s := range chunk {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString("(?,?,?,?,?,?)")
				args = append(args, sc.tenantID, s.ServerID, s.Metric, s.Label, s.Value, s.At.UTC())
			}
			if _, err := tx.exec(ctx, b.String(), args...); err != nil {
				return fmt.Errorf("insert samples: %w", err)
			}
		}
		return nil
	})
}

// MetricPoints returns raw samples and rollups of a series in [from, to), oldest first.
func (db *DB) MetricPoints(ctx context.Context, serverID, metric, label string, from, to time.Time) ([]metrics.RawPoint, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT label, bucket_at, avg_value, min_value, max_value, samples FROM ~metric_rollups
		WHERE tenant_id = ? AND server_id = ? AND metric_type = ? AND (? = '' OR label = ?) AND bucket_at >= ? AND bucket_at < ?
		UNION ALL
		SELECT label, collected_at, value, value, value, 1 FROM ~metric_snapshots
		WHERE tenant_id = ? AND server_id = ? AND metric_type = ? AND (? = '' OR label = ?) AND collected_at >= ? AND collected_at < ?
		ORDER BY 2`, sc.tenantID, serverID, metric, label, label, from.UTC(), to.UTC(),
		sc.tenantID, serverID, metric, label, label, from.UTC(), to.UTC())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []metrics.RawPoint
	for rows.Next() {
		var p metrics.RawPoint
		var at anyTime
		if err := rows.Scan(&p.Label, &at, &p.Avg, &p.Min, &p.Max, &p.Count); err != nil {
			return nil, err
		}
		p.At = at.Time
		out = append(out, p)
	}
	return out, rows.Err()
}

// latestWindow bounds MetricLatest: a series silent for longer is not "latest" any more.
const latestWindow = time.Hour

// MetricLatest returns the newest sample of every series of serverID (every server when empty) seen in
// the last hour.
func (db *DB) MetricLatest(ctx context.Context, serverID string) ([]monitor.Sample, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT server_id, metric_type, label, value, collected_at FROM ~metric_snapshots
		WHERE tenant_id = ? AND (? = '' OR server_id = ?) AND collected_at >= ? ORDER BY collected_at DESC`,
		sc.tenantID, serverID, serverID, db.Now().Add(-latestWindow).UTC())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type key struct{ server, metric, label string }
	seen := map[key]bool{}
	var out []monitor.Sample
	for rows.Next() {
		var s monitor.Sample
		if err := rows.Scan(&s.ServerID, &s.Metric, &s.Label, &s.Value, &s.At); err != nil {
			return nil, err
		}
		k := key{s.ServerID, s.Metric, s.Label}
		if seen[k] {
			continue
		}
		seen[k] = true
		s.At = s.At.UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// rollupWindow is how much raw data one maintenance step folds at a time (bounded memory).
const rollupWindow = time.Hour

// MetricMaintain folds raw samples older than the raw retention into rollups, deletes expired rollups,
// and on PostgreSQL creates the coming months' partitions and drops the emptied old ones.
func (db *DB) MetricMaintain(ctx context.Context, p metrics.MaintainParams) (metrics.MaintainResult, error) {
	var res metrics.MaintainResult
	sc, err := db.scope(ctx)
	if err != nil {
		return res, err
	}
	if p.RollupStep <= 0 {
		return res, errs.Invalidf("rollup_step", "rollup step must be positive")
	}
	now := p.Now.UTC()
	if sc.pg {
		if res.PartitionsCreated, err = db.ensurePartitions(ctx, sc, now, p.MonthsAhead); err != nil {
			return res, err
		}
	}
	cutoff := now.Add(-p.RawRetention).Truncate(p.RollupStep)
	for {
		var first anyTime
		if err := sc.queryRow(ctx, `SELECT MIN(collected_at) FROM ~metric_snapshots WHERE tenant_id = ? AND collected_at < ?`,
			sc.tenantID, cutoff).Scan(&first); err != nil {
			return res, fmt.Errorf("oldest sample: %w", err)
		}
		if !first.Valid {
			break
		}
		from := first.Time.UTC().Truncate(p.RollupStep)
		to := from.Add(rollupWindow)
		if to.After(cutoff) {
			to = cutoff
		}
		n, w, err := db.foldWindow(ctx, sc, from, to, p.RollupStep)
		if err != nil {
			return res, err
		}
		res.RolledUp += n
		res.RollupsWritten += w
	}
	r, err := sc.exec(ctx, `DELETE FROM ~metric_rollups WHERE tenant_id = ? AND bucket_at < ?`, sc.tenantID, now.Add(-p.RollupRetention))
	if err != nil {
		return res, fmt.Errorf("expire rollups: %w", err)
	}
	n, _ := r.RowsAffected()
	res.RollupsDeleted = int(n)
	if sc.pg {
		if res.PartitionsDropped, err = db.dropEmptyPartitions(ctx, sc, cutoff); err != nil {
			return res, err
		}
	}
	return res, nil
}

// foldWindow turns the raw samples in [from, to) into rollups (merged into existing buckets), in one
// transaction. The samples are taken with DELETE … RETURNING, so what is folded is exactly what is removed:
// two replicas maintaining at once cannot count a sample twice, and a late sample cannot be dropped unfolded.
func (db *DB) foldWindow(ctx context.Context, sc scope, from, to time.Time, step time.Duration) (folded, written int, err error) {
	err = sc.inTx(ctx, func(tx scopeTx) error {
		rows, err := tx.query(ctx, `DELETE FROM ~metric_snapshots WHERE tenant_id = ? AND collected_at >= ? AND collected_at < ?
			RETURNING server_id, metric_type, label, value, collected_at`, sc.tenantID, from, to)
		if err != nil {
			return err
		}
		type key struct {
			server, metric, label string
			at                    time.Time
		}
		type agg struct {
			sum, min, max float64
			n             int
		}
		buckets := map[key]*agg{}
		var order []key
		for rows.Next() {
			var k key
			var v float64
			var at anyTime
			if err := rows.Scan(&k.server, &k.metric, &k.label, &v, &at); err != nil {
				rows.Close()
				return err
			}
			k.at = at.Time.Truncate(step)
			a := buckets[k]
			if a == nil {
				a = &agg{min: v, max: v}
				buckets[k] = a
				order = append(order, k)
			}
			a.sum += v
			a.n++
			a.min, a.max = min(a.min, v), max(a.max, v)
			folded++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, k := range order {
			a := buckets[k]
			if _, err := tx.exec(ctx, `INSERT INTO ~metric_rollups (tenant_id, server_id, metric_type, label, bucket_at, avg_value, min_value,
				max_value, samples) VALUES (?,?,?,?,?,?,?,?,?)
				ON CONFLICT (server_id, metric_type, label, bucket_at) DO UPDATE SET
				avg_value = (~metric_rollups.avg_value * ~metric_rollups.samples + excluded.avg_value * excluded.samples) / (~metric_rollups.samples + excluded.samples),
				min_value = CASE WHEN excluded.min_value < ~metric_rollups.min_value THEN excluded.min_value ELSE ~metric_rollups.min_value END,
				max_value = CASE WHEN excluded.max_value > ~metric_rollups.max_value THEN excluded.max_value ELSE ~metric_rollups.max_value END,
				samples = ~metric_rollups.samples + excluded.samples`,
				sc.tenantID, k.server, k.metric, k.label, k.at, a.sum/float64(a.n), a.min, a.max, a.n); err != nil {
				return fmt.Errorf("write rollup: %w", err)
			}
			written++
		}
		return nil
	})
	return folded, written, err
}

// partitionName is the monthly partition holding month m.
func partitionName(m time.Time) string {
	return fmt.Sprintf("metric_snapshots_y%04dm%02d", m.Year(), int(m.Month()))
}

// ensurePartitions creates the partitions of the current month and monthsAhead more. Rows already in the
// default partition for such a month are moved into the new partition before it is attached (PostgreSQL
// refuses to attach a range the default partition holds rows of).
func (db *DB) ensurePartitions(ctx context.Context, sc scope, now time.Time, monthsAhead int) ([]string, error) {
	existing, err := db.partitions(ctx, sc)
	if err != nil {
		return nil, err
	}
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	var created []string
	for i := 0; i <= monthsAhead; i++ {
		from := month.AddDate(0, i, 0)
		name := partitionName(from)
		if existing[name] {
			continue
		}
		to := from.AddDate(0, 1, 0)
		err := sc.inTx(ctx, func(tx scopeTx) error {
			if _, err := tx.exec(ctx, `CREATE TABLE ~`+name+` (LIKE ~metric_snapshots INCLUDING DEFAULTS)`); err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `WITH moved AS (DELETE FROM ~metric_snapshots_default WHERE collected_at >= ? AND collected_at < ? RETURNING *)
				INSERT INTO ~`+name+` SELECT * FROM moved`, from, to); err != nil {
				return err
			}
			_, err := tx.exec(ctx, `ALTER TABLE ~metric_snapshots ATTACH PARTITION ~`+name+` FOR VALUES FROM ('`+
				from.Format("2006-01-02")+` 00:00:00+00') TO ('`+to.Format("2006-01-02")+` 00:00:00+00')`)
			return err
		})
		if err != nil {
			return created, fmt.Errorf("create partition %s: %w", name, err)
		}
		created = append(created, name)
	}
	return created, nil
}

// partitions lists the monthly partitions of the tenant's metric_snapshots.
func (db *DB) partitions(ctx context.Context, sc scope) (map[string]bool, error) {
	// The rewriter leaves literals alone, so the table's qualified name is a parameter.
	rows, err := sc.query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = CAST(? AS regclass) AND c.relname LIKE 'metric_snapshots_y%'`, sc.prefix+"metric_snapshots")
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}

// MetricPartitions lists the monthly partitions of the tenant's raw samples (PostgreSQL; nil on SQLite).
func (db *DB) MetricPartitions(ctx context.Context) ([]string, error) {
	sc, err := db.scope(ctx)
	if err != nil || !sc.pg {
		return nil, err
	}
	m, err := db.partitions(ctx, sc)
	var out []string
	for n := range m {
		out = append(out, n)
	}
	return out, err
}

// dropEmptyPartitions drops monthly partitions that end before cutoff: rollup has emptied them.
func (db *DB) dropEmptyPartitions(ctx context.Context, sc scope, cutoff time.Time) ([]string, error) {
	existing, err := db.partitions(ctx, sc)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for name := range existing {
		var y, m int
		if _, err := fmt.Sscanf(name, "metric_snapshots_y%04dm%02d", &y, &m); err != nil {
			continue
		}
		end := time.Date(y, time.Month(m), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
		if end.After(cutoff) {
			continue
		}
		if _, err := sc.exec(ctx, `DROP TABLE ~`+name); err != nil {
			return dropped, fmt.Errorf("drop partition %s: %w", name, err)
		}
		dropped = append(dropped, name)
	}
	return dropped, nil
}

// anyTime scans a timestamp that SQLite may hand back as text: columns computed by MIN() or by a UNION
// carry no declared type, so the driver cannot convert them itself.
type anyTime struct {
	Time  time.Time
	Valid bool
}

var sqliteTimeLayouts = []string{"2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"}

// Scan implements sql.Scanner.
func (t *anyTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		t.Valid = false
		return nil
	case time.Time:
		t.Time, t.Valid = x.UTC(), true
		return nil
	case []byte:
		return t.Scan(string(x))
	case string:
		for _, l := range sqliteTimeLayouts {
			if p, err := time.Parse(l, x); err == nil {
				t.Time, t.Valid = p.UTC(), true
				return nil
			}
		}
		return fmt.Errorf("cannot read %q as a time", x)
	}
	return fmt.Errorf("cannot read %T as a time", v)
}
