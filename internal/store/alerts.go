package store

import (
	"context"
	"encoding/json"

	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/alerts"
)

var _ alerts.Store = (*DB)(nil)

// AlertRuleCreate inserts r; errs.Conflict when the name is taken.
func (db *DB) AlertRuleCreate(ctx context.Context, r *alerts.Rule) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	r.TenantID = sc.tenantID
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `INSERT INTO ~alert_rules (id, tenant_id, name, active, doc, created_at, updated_at) VALUES (?,?,?,?,?,?,?)`,
		r.ID, sc.tenantID, r.Name, r.Active, string(doc), r.CreatedAt, r.UpdatedAt)
	return uniqueConflict(err, "an alert rule named "+r.Name)
}

// AlertRuleGet returns rule id.
func (db *DB) AlertRuleGet(ctx context.Context, id string) (*alerts.Rule, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	return getDoc[alerts.Rule](ctx, sc, "alert rule", `SELECT doc FROM ~alert_rules WHERE id = ? AND tenant_id = ?`, id, sc.tenantID)
}

// AlertRuleList returns every rule, by name.
func (db *DB) AlertRuleList(ctx context.Context) ([]alerts.Rule, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	return listDocs[alerts.Rule](ctx, sc, `SELECT doc FROM ~alert_rules WHERE tenant_id = ? ORDER BY name`, sc.tenantID)
}

// AlertRuleUpdate saves r.
func (db *DB) AlertRuleUpdate(ctx context.Context, r *alerts.Rule) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~alert_rules SET name = ?, active = ?, doc = ?, updated_at = ? WHERE id = ? AND tenant_id = ?`,
		r.Name, r.Active, string(doc), r.UpdatedAt, r.ID, sc.tenantID)
	if err != nil {
		return uniqueConflict(err, "an alert rule named "+r.Name)
	}
	return mustAffect(res, "alert rule")
}

// AlertRuleDelete removes rule id and its evaluation states (its events stay, as history).
func (db *DB) AlertRuleDelete(ctx context.Context, id string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		if _, err := tx.exec(ctx, `DELETE FROM ~alert_states WHERE rule_id = ? AND tenant_id = ?`, id, sc.tenantID); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM ~alert_rules WHERE id = ? AND tenant_id = ?`, id, sc.tenantID)
		if err != nil {
			return err
		}
		return mustAffect(res, "alert rule")
	})
}

// AlertEventOpen inserts e; errs.Conflict when the rule already has an open event on the server.
func (db *DB) AlertEventOpen(ctx context.Context, e *alerts.Event) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	e.TenantID = sc.tenantID
	doc, err := json.Marshal(e)
	if err != nil {
		return err
	}
	err = sc.inTx(ctx, func(tx scopeTx) error {
		if _, err := tx.exec(ctx, `INSERT INTO ~alert_events (id, tenant_id, rule_id, server_id, status, severity, doc, fired_at, resolved_at)
			VALUES (?,?,?,?,?,?,?,?,?)`, e.ID, sc.tenantID, e.RuleID, e.ServerID, e.Status, e.Severity, string(doc), e.FiredAt, e.ResolvedAt); err != nil {
			return err
		}
		return tx.outboxFact(ctx, monitor.StreamEvents, monitor.EventAlertFired, e.ID, e.FiredAt, e)
	})
	return uniqueConflict(err, "an open alert of this rule on this server")
}

// AlertEventGet returns event id.
func (db *DB) AlertEventGet(ctx context.Context, id string) (*alerts.Event, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	return getDoc[alerts.Event](ctx, sc, "alert", `SELECT doc FROM ~alert_events WHERE id = ? AND tenant_id = ?`, id, sc.tenantID)
}

// AlertEventList returns events matching f, newest first.
func (db *DB) AlertEventList(ctx context.Context, f alerts.Filter) ([]alerts.Event, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	return listDocs[alerts.Event](ctx, sc, `SELECT doc FROM ~alert_events WHERE tenant_id = ? AND (? = '' OR status = ?) AND (? = '' OR severity = ?)
		AND (? = '' OR rule_id = ?) AND (? = '' OR server_id = ?) ORDER BY fired_at DESC, id LIMIT ?`, sc.tenantID, f.Status, f.Status,
		f.Severity, f.Severity, f.RuleID, f.RuleID, f.ServerID, f.ServerID, f.Limit)
}

// AlertEventUpdate saves e.
func (db *DB) AlertEventUpdate(ctx context.Context, e *alerts.Event) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	doc, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		var was string
		if err := tx.queryRow(ctx, `SELECT status FROM ~alert_events WHERE id = ? AND tenant_id = ?`, e.ID, sc.tenantID).Scan(&was); err != nil {
			return notFound(err, "alert")
		}
		if _, err := tx.exec(ctx, `UPDATE ~alert_events SET status = ?, doc = ?, resolved_at = ? WHERE id = ? AND tenant_id = ?`,
			e.Status, string(doc), e.ResolvedAt, e.ID, sc.tenantID); err != nil {
			return err
		}
		if e.Status != alerts.Resolved || was == alerts.Resolved {
			return nil
		}
		at := db.Now()
		if e.ResolvedAt != nil {
			at = *e.ResolvedAt
		}
		return tx.outboxFact(ctx, monitor.StreamEvents, monitor.EventAlertResolved, e.ID, at, e)
	})
}

// AlertEventCount counts open (firing or acknowledged) events by severity.
func (db *DB) AlertEventCount(ctx context.Context) (map[string]int, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT severity, COUNT(*) FROM ~alert_events WHERE tenant_id = ? AND resolved_at IS NULL GROUP BY severity`, sc.tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// AlertStateList returns every persisted evaluation state.
func (db *DB) AlertStateList(ctx context.Context) ([]alerts.State, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT rule_id, server_id, since, value, event_id FROM ~alert_states WHERE tenant_id = ?`, sc.tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []alerts.State
	for rows.Next() {
		var s alerts.State
		if err := rows.Scan(&s.RuleID, &s.ServerID, &s.Since, &s.Value, &s.EventID); err != nil {
			return nil, err
		}
		s.Since = s.Since.UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// AlertStatePut inserts or replaces a state.
func (db *DB) AlertStatePut(ctx context.Context, s *alerts.State) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `INSERT INTO ~alert_states (tenant_id, rule_id, server_id, since, value, event_id) VALUES (?,?,?,?,?,?)
		ON CONFLICT (rule_id, server_id) DO UPDATE SET since = excluded.since, value = excluded.value, event_id = excluded.event_id`,
		sc.tenantID, s.RuleID, s.ServerID, s.Since.UTC(), s.Value, s.EventID)
	return err
}

// AlertStateDelete removes the state of a rule on a server (no error when there is none).
func (db *DB) AlertStateDelete(ctx context.Context, ruleID, serverID string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `DELETE FROM ~alert_states WHERE rule_id = ? AND server_id = ? AND tenant_id = ?`, ruleID, serverID, sc.tenantID)
	return err
}
