package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/monitor/metrics"
)

// MonitoringDeps are the metrics and alerting services (nil when the monitor module is not running here).
type MonitoringDeps struct {
	Metrics *metrics.Service
	Alerts  *alerts.Service
}

// monitoringRoutes are metric sources, metric queries, alert rules and alert events.
func (s *Server) monitoringRoutes() []route {
	if s.Monitoring == nil || s.Monitoring.Metrics == nil || s.Monitoring.Alerts == nil {
		return nil
	}
	const mon = "/api/v1/monitor"
	view, manage := auth.PermViewDashboard, auth.PermManageSettings
	return []route{
		{method: "POST", path: mon + "/sources", summary: "Add a metric source: ssh (a server selection), node_exporter (a URL for one server) or prometheus (PromQL)",
			perm: auth.PermManageServers, handler: s.createSource, req: sourceRequest{}, resp: metrics.Source{}, status: http.StatusCreated},
		{method: "GET", path: mon + "/sources", summary: "List metric sources with their last collection and error", perm: view,
			handler: s.listSources, resp: listResponse[metrics.Source]{}},
		{method: "GET", path: mon + "/sources/{id}", summary: "Get a metric source", perm: view, handler: s.getSource, resp: metrics.Source{}},
		{method: "PATCH", path: mon + "/sources/{id}", summary: "Change a metric source (fields given are replaced; type is fixed)", perm: auth.PermManageServers,
			handler: s.patchSource, req: sourceRequest{}, resp: metrics.Source{}},
		{method: "DELETE", path: mon + "/sources/{id}", summary: "Delete a metric source (its samples stay)", perm: auth.PermManageServers,
			handler: s.deleteSource, status: http.StatusNoContent},
		{method: "POST", path: mon + "/sources/{id}/collect", summary: "Collect a metric source now and return what it read", perm: auth.PermManageServers,
			handler: s.collectSource, resp: collectResponse{}},
		{method: "GET", path: mon + "/metrics", summary: "A server's metric over time (?server_id=&metric_type=&from=&to=&step=60s&label=)", perm: view,
			handler: s.queryMetrics, resp: listResponse[metrics.Series]{}},
		{method: "POST", path: mon + "/metrics", summary: "Push metric samples (stored and evaluated like collected ones)", perm: auth.PermManageServers,
			handler: s.ingestMetrics, req: ingestRequest{}, status: http.StatusAccepted},
		{method: "GET", path: mon + "/metrics/latest", summary: "The newest value of every series (?server_id= for one server)", perm: view,
			handler: s.latestMetrics, resp: listResponse[monitor.Sample]{}},
		{method: "POST", path: mon + "/alert-rules", summary: "Create an alert rule (operator > >= < <= == !=, severity info|warning|critical|fatal)", perm: manage,
			handler: s.createAlertRule, req: ruleRequest{}, resp: alerts.Rule{}, status: http.StatusCreated},
		{method: "GET", path: mon + "/alert-rules", summary: "List alert rules", perm: view, handler: s.listAlertRules, resp: listResponse[alerts.Rule]{}},
		{method: "GET", path: mon + "/alert-rules/{id}", summary: "Get an alert rule", perm: view, handler: s.getAlertRule, resp: alerts.Rule{}},
		{method: "PATCH", path: mon + "/alert-rules/{id}", summary: "Change an alert rule (fields given are replaced; deactivating resolves its alerts)", perm: manage,
			handler: s.patchAlertRule, req: ruleRequest{}, resp: alerts.Rule{}},
		{method: "DELETE", path: mon + "/alert-rules/{id}", summary: "Delete an alert rule (its open alerts are resolved)", perm: manage,
			handler: s.deleteAlertRule, status: http.StatusNoContent},
		{method: "GET", path: mon + "/alerts", summary: "List alerts, newest first (?status=firing|acknowledged|resolved&severity=&rule_id=&server_id=&limit=)", perm: view,
			handler: s.listAlerts, resp: listResponse[alerts.Event]{}},
		{method: "GET", path: mon + "/alerts/{id}", summary: "Get an alert with its remediation run", perm: view, handler: s.getAlert, resp: alerts.Event{}},
		{method: "POST", path: mon + "/alerts/{id}/acknowledge", summary: "Acknowledge a firing alert", perm: auth.PermStartTask,
			handler: s.acknowledgeAlert, resp: alerts.Event{}},
	}
}

// sourceRequest creates or patches a source; on PATCH, absent fields stay as they are.
type sourceRequest struct {
	Name            *string              `json:"name"`
	Type            *string              `json:"type"`
	Selector        *inventory.Selector  `json:"selector"`
	ServerID        *string              `json:"server_id"`
	URL             *string              `json:"url"`
	Queries         *[]metrics.PromQuery `json:"queries"`
	ServerLabel     *string              `json:"server_label"`
	IntervalSeconds *int                 `json:"interval_seconds"`
	Enabled         *bool                `json:"enabled"`
}

func (q *sourceRequest) apply(src *metrics.Source) {
	set(&src.Name, q.Name)
	set(&src.ServerID, q.ServerID)
	set(&src.URL, q.URL)
	set(&src.ServerLabel, q.ServerLabel)
	set(&src.IntervalSeconds, q.IntervalSeconds)
	set(&src.Enabled, q.Enabled)
	set(&src.Queries, q.Queries)
	if q.Selector != nil {
		src.Selector = q.Selector
	}
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Server) createSource(w http.ResponseWriter, r *http.Request) error {
	var req sourceRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	src := &metrics.Source{Enabled: true}
	set(&src.Type, req.Type)
	req.apply(src)
	if err := s.Monitoring.Metrics.CreateSource(r.Context(), src); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, src)
	return nil
}

func (s *Server) listSources(w http.ResponseWriter, r *http.Request) error {
	l, err := s.Monitoring.Metrics.Sources(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(l))
	return nil
}

func (s *Server) getSource(w http.ResponseWriter, r *http.Request) error {
	src, err := s.Monitoring.Metrics.Source(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, src)
	return nil
}

func (s *Server) patchSource(w http.ResponseWriter, r *http.Request) error {
	var req sourceRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	src, err := s.Monitoring.Metrics.Source(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if req.Type != nil && *req.Type != src.Type {
		return errs.Invalidf("type", "a source's type cannot change (delete it and create a %s source)", *req.Type)
	}
	req.apply(src)
	if err := s.Monitoring.Metrics.UpdateSource(r.Context(), src); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, src)
	return nil
}

func (s *Server) deleteSource(w http.ResponseWriter, r *http.Request) error {
	if err := s.Monitoring.Metrics.DeleteSource(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// collectResponse is what one collection read, and what went wrong.
type collectResponse struct {
	Samples []monitor.Sample `json:"samples"`
	Error   string           `json:"error,omitempty"`
}

func (s *Server) collectSource(w http.ResponseWriter, r *http.Request) error {
	src, err := s.Monitoring.Metrics.Source(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	samples, err := s.Monitoring.Metrics.Collect(r.Context(), src)
	resp := collectResponse{Samples: nonNil(samples)}
	if err != nil {
		// The source answered badly (or not at all): that is the result of collecting, not a failed request.
		resp.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) queryMetrics(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	mq := metrics.Query{ServerID: q.Get("server_id"), Metric: q.Get("metric_type"), Label: q.Get("label")}
	var bad []error
	var err error
	if mq.From, err = queryTime(r, "from"); err != nil {
		bad = append(bad, err)
	}
	if mq.To, err = queryTime(r, "to"); err != nil {
		bad = append(bad, err)
	}
	if mq.To.IsZero() {
		mq.To = time.Now().UTC()
	}
	if mq.From.IsZero() {
		mq.From = mq.To.Add(-time.Hour)
	}
	if st := q.Get("step"); st != "" {
		d, err := time.ParseDuration(st)
		if err != nil {
			// Prometheus also takes a bare number of seconds.
			d, err = time.ParseDuration(st + "s")
		}
		if err != nil {
			bad = append(bad, errs.Invalidf("step", "step must be a duration such as 60s or 5m"))
		}
		mq.Step = d
	}
	if len(bad) > 0 {
		// Report every bad parameter at once.
		return errs.Join(append(bad, mq.Validate())...)
	}
	series, err := s.Monitoring.Metrics.Query(r.Context(), mq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(series))
	return nil
}

type ingestRequest struct {
	Samples []monitor.Sample `json:"samples"`
}

func (s *Server) ingestMetrics(w http.ResponseWriter, r *http.Request) error {
	var req ingestRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.Monitoring.Metrics.Ingest(r.Context(), req.Samples); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": len(req.Samples)})
	return nil
}

func (s *Server) latestMetrics(w http.ResponseWriter, r *http.Request) error {
	l, err := s.Monitoring.Metrics.Latest(r.Context(), r.URL.Query().Get("server_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(l))
	return nil
}

// ruleRequest creates or patches an alert rule; on PATCH, absent fields stay as they are.
type ruleRequest struct {
	Name          *string           `json:"name"`
	Metric        *string           `json:"metric_type"`
	Condition     *conditionRequest `json:"condition"`
	Severity      *string           `json:"severity"`
	TargetServers *[]string         `json:"target_servers"`
	RunbookID     *string           `json:"runbook_id"`
	Active        *bool             `json:"active"`
}

type conditionRequest struct {
	Operator        *string  `json:"operator"`
	Threshold       *float64 `json:"threshold"`
	DurationSeconds *int     `json:"duration_seconds"`
}

func (q *ruleRequest) apply(rule *alerts.Rule) {
	set(&rule.Name, q.Name)
	set(&rule.Metric, q.Metric)
	set(&rule.Severity, q.Severity)
	set(&rule.TargetServers, q.TargetServers)
	set(&rule.RunbookID, q.RunbookID)
	set(&rule.Active, q.Active)
	if c := q.Condition; c != nil {
		set(&rule.Condition.Operator, c.Operator)
		set(&rule.Condition.Threshold, c.Threshold)
		set(&rule.Condition.DurationSeconds, c.DurationSeconds)
	}
}

func (s *Server) createAlertRule(w http.ResponseWriter, r *http.Request) error {
	var req ruleRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Condition == nil || req.Condition.Threshold == nil {
		return errs.Invalidf("condition.threshold", "condition with operator, threshold and duration_seconds is required")
	}
	rule := &alerts.Rule{Active: true}
	req.apply(rule)
	if err := s.Monitoring.Alerts.CreateRule(r.Context(), rule); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, rule)
	return nil
}

func (s *Server) listAlertRules(w http.ResponseWriter, r *http.Request) error {
	l, err := s.Monitoring.Alerts.Rules(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(l))
	return nil
}

func (s *Server) getAlertRule(w http.ResponseWriter, r *http.Request) error {
	rule, err := s.Monitoring.Alerts.Rule(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rule)
	return nil
}

func (s *Server) patchAlertRule(w http.ResponseWriter, r *http.Request) error {
	var req ruleRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	rule, err := s.Monitoring.Alerts.Rule(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	req.apply(rule)
	if err := s.Monitoring.Alerts.UpdateRule(r.Context(), rule); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rule)
	return nil
}

func (s *Server) deleteAlertRule(w http.ResponseWriter, r *http.Request) error {
	if err := s.Monitoring.Alerts.DeleteRule(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	l, err := s.Monitoring.Alerts.Events(r.Context(), alerts.Filter{Status: strings.TrimSpace(q.Get("status")), Severity: q.Get("severity"),
		RuleID: q.Get("rule_id"), ServerID: q.Get("server_id"), Limit: limit})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(l))
	return nil
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) error {
	ev, err := s.Monitoring.Alerts.Event(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ev)
	return nil
}

func (s *Server) acknowledgeAlert(w http.ResponseWriter, r *http.Request) error {
	ev, err := s.Monitoring.Alerts.Acknowledge(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ev)
	return nil
}
