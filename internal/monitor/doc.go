// Package monitor is IT0's monitoring context: health checks, metrics collected from servers (over SSH,
// from node_exporter endpoints and from Prometheus), alert rules evaluated on those metrics like
// Prometheus `for:` clauses, and alert events that hand trouble to the agent (a linked runbook, standing
// orders waiting for alert_fired).
//
// The package imports no database, HTTP client or vendor SDK. It declares what it needs as small
// interfaces (MetricStore, AlertStore, Fleet, NodeScraper, PromQuerier, Remediator); internal/store,
// internal/inventory, monitor/nodeexporter and monitor/promapi implement them, and internal/app wires them.
//
// Metrics storage policy: raw samples are kept for 7 days; older samples are folded into 5-minute
// averages (with min, max and count) that are kept for 90 days. On PostgreSQL the raw table is partitioned
// by month and the maintenance job creates the coming months' partitions ahead of time.
//
// Alert evaluation state (pending since, firing event) is persisted on every transition, so a restart
// neither forgets a condition that has been pending for four of its five minutes nor fires a second event
// for an alert that is already firing. Replicas share it: each round of a source is claimed by one
// replica, states are re-read with the rules, and the database keeps one open event per rule and server.
package monitor
