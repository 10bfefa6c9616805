package store

import (
	"context"
	"fmt"
)

// Gauges are the counts of one tenant that IT0 exports as Prometheus gauges.
type Gauges struct {
	// AlertsOpen counts open (firing or acknowledged) alert events by severity.
	AlertsOpen map[string]int
	// SessionsLive counts agent sessions that are running or waiting for an approval, by status.
	SessionsLive map[string]int
	// ApprovalsPending counts approvals waiting for a human.
	ApprovalsPending int
}

// Gauges reads the tenant's gauges in one statement, so a scrape costs one round trip per tenant.
func (db *DB) Gauges(ctx context.Context) (Gauges, error) {
	g := Gauges{AlertsOpen: map[string]int{}, SessionsLive: map[string]int{}}
	sc, err := db.scope(ctx)
	if err != nil {
		return g, err
	}
	rows, err := sc.query(ctx, `
		SELECT 'alert', severity, COUNT(*) FROM ~alert_events WHERE tenant_id = ? AND resolved_at IS NULL GROUP BY severity
		UNION ALL
		SELECT 'session', status, COUNT(*) FROM ~agent_sessions WHERE tenant_id = ? AND status IN ('running', 'awaiting_approval') GROUP BY status
		UNION ALL
		SELECT 'approval', 'pending', COUNT(*) FROM ~approval_requests WHERE tenant_id = ? AND status = 'pending'`,
		sc.tenantID, sc.tenantID, sc.tenantID)
	if err != nil {
		return g, fmt.Errorf("read gauges: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, label string
		var n int
		if err := rows.Scan(&kind, &label, &n); err != nil {
			return g, fmt.Errorf("read gauges: %w", err)
		}
		switch kind {
		case "alert":
			g.AlertsOpen[label] = n
		case "session":
			g.SessionsLive[label] = n
		case "approval":
			g.ApprovalsPending = n
		}
	}
	if err := rows.Err(); err != nil {
		return g, fmt.Errorf("read gauges: %w", err)
	}
	return g, nil
}
