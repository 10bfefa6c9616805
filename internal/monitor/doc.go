// Package monitor is IT0's monitoring context. It is three bounded contexts that meet at one value, the
// metric sample, and each lives in a subpackage of its own:
//
//   - checks: health checks (HTTP, TCP, ping, SSH, custom commands), their scheduler and state machine;
//     a transition to down is published as check_failed.
//   - metrics: metric sources (SSH /proc readings, node_exporter endpoints, Prometheus queries), the
//     collector loop, retention and rollups.
//   - alerts: alert rules evaluated on samples like Prometheus `for:` clauses, and alert events that hand
//     trouble to the agent (a linked runbook, standing orders waiting for alert_fired).
//
// This package holds only what they share: Sample and the metric types (metrics produces samples, alerts
// evaluates them) and AuditRecorder. The subpackages import no database, HTTP client or vendor SDK: each
// declares what it needs as small interfaces (checks.Store, metrics.Store, alerts.Store, metrics.Fleet,
// metrics.NodeScraper, metrics.PromQuerier, alerts.Remediator); internal/store, internal/inventory,
// monitor/nodeexporter and monitor/promapi implement them, and internal/app wires them.
package monitor
