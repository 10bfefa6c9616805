package httpapi

import (
	"reflect"
	"strings"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/monitor/checks"
	"github.com/it0/it0/internal/monitor/metrics"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
)

// This file holds what the OpenAPI document needs and reflection cannot see. Tests keep it honest:
// TestOpenAPIQueryParamsMatchHandlers compares queryParams with the query parameters each handler reads,
// and TestOpenAPITablesNameRealFields checks every type and field named here.

// queryParam is one documented query parameter.
type queryParam struct {
	name, desc string
	kind       string // "string" (default), "integer", "date-time", "duration"
	enum       []string
	min, max   int64 // for integers; max 0 = unbounded
	def        any
	required   bool
}

func (q queryParam) spec() map[string]any {
	s := map[string]any{"type": "string"}
	switch q.kind {
	case "integer":
		s = map[string]any{"type": "integer", "minimum": q.min}
		if q.max > 0 {
			s["maximum"] = q.max
		}
	case "date-time":
		s["format"] = "date-time"
	case "duration":
		s["pattern"] = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	}
	if q.enum != nil {
		s["enum"] = q.enum
	}
	if q.def != nil {
		s["default"] = q.def
	}
	p := map[string]any{"name": q.name, "in": "query", "schema": s, "description": q.desc}
	if q.required {
		p["required"] = true
	}
	return p
}

func limitParam(def, max int64) queryParam {
	return queryParam{name: "limit", desc: "at most this many items", kind: "integer", min: 1, max: max, def: def}
}

func afterParam() queryParam {
	return queryParam{name: "after", desc: "only events with a higher sequence number", kind: "integer", min: 0, max: 1 << 62, def: 0}
}

var (
	sessionStatuses = []string{agent.StatusRunning, agent.StatusAwaitingApproval, agent.StatusIdle, agent.StatusCompleted,
		agent.StatusFailed, agent.StatusCancelled}
	approvalStatuses   = approval.Statuses
	taskStatuses       = []string{"running", "awaiting_approval", "completed", "failed", "cancelled"}
	orderStatuses      = []string{"active", "paused", "archived"}
	executionStatuses  = []string{ops.ExecRunning, ops.ExecCompleted, ops.ExecFailed, ops.ExecAwaitingHuman, ops.ExecAborted, ops.ExecSkipped}
	escalationStatuses = []string{comm.EscalationActive, comm.EscalationAnswered, comm.EscalationClosed}
	messageStatuses    = []string{comm.StatusPending, comm.StatusSent, comm.StatusDelivered, comm.StatusFailed, comm.StatusSkipped,
		comm.StatusReceived, comm.StatusRefused}
	// messageChannels are the outbound channels plus the inbound-only answer link.
	messageChannels = append(append([]string{}, comm.Channels...), comm.ChannelLink)
	riskLevels      = []any{0, 1, 2, 3} // guard.L0 … guard.L3
)

// queryParams are the query parameters of each operation, keyed "METHOD path".
var queryParams = map[string][]queryParam{
	"DELETE /api/v1/auth/tenants/{id}": {{name: "confirm", desc: "the tenant's slug, to confirm the deletion", required: true}},
	"GET /api/v1/audit/logs": {
		{name: "action_type", desc: "only this action (auth.login, approval.decided, …)"},
		{name: "actor", desc: "only this actor id"},
		{name: "resource_type", desc: "only this resource type"},
		{name: "resource_id", desc: "only this resource id"},
		{name: "since", desc: "only entries at or after this time (RFC 3339)", kind: "date-time"},
		{name: "until", desc: "only entries before this time (RFC 3339)", kind: "date-time"},
		limitParam(100, 1000),
		{name: "cursor", desc: "the next_cursor of the previous page", kind: "integer", min: 1},
	},
	"GET /api/v1/inventory/servers": {
		{name: "environment", desc: "only servers in this environment"},
		{name: "role", desc: "only servers with this role"},
		{name: "cluster_id", desc: "only servers in this cluster"},
		{name: "tag", desc: "only servers with all these tags (comma-separated)"},
	},
	"GET /api/v1/inventory/command-records": {
		{name: "server_id", desc: "only commands on this server"},
		{name: "session_id", desc: "only commands of this agent session"},
		limitParam(50, 1000),
	},
	"GET /api/v1/agent/sessions": {
		{name: "status", desc: "only sessions in this status", enum: sessionStatuses},
		limitParam(50, 500),
	},
	"GET /api/v1/agent/sessions/{id}/events": {afterParam(), limitParam(1000, 10000)},
	"GET /api/v1/agent/approvals": {
		{name: "status", desc: "only approvals in this status", enum: approvalStatuses},
		{name: "session_id", desc: "only approvals of this session"},
	},
	"GET /ws/agent": {
		{name: "session", desc: "the session whose events to stream", required: true},
		afterParam(),
		{name: "token", desc: "a token or API key, for browsers that cannot set Authorization on a WebSocket"},
	},
	"GET /ws/comm": {{name: "token", desc: "a token or API key, for browsers that cannot set Authorization on a WebSocket"}},
	"GET /ws/voice": {
		{name: "voice_session", desc: "the voice session to connect (from POST /api/v1/voice/sessions)", required: true},
		{name: "token", desc: "a token or API key, for browsers that cannot set Authorization on a WebSocket"},
	},
	"GET /api/v1/ops/tasks": {
		{name: "status", desc: "only tasks in this status", enum: taskStatuses},
		{name: "type", desc: "only tasks of this type"},
		limitParam(50, 500),
	},
	"GET /api/v1/ops/approvals": {
		{name: "status", desc: "approvals in this status, or all", enum: append(append([]string{}, approvalStatuses...), "all"),
			def: approval.Pending},
		{name: "session_id", desc: "only approvals of this session"},
	},
	"GET /api/v1/ops/standing-orders":                 {{name: "status", desc: "only orders in this status", enum: orderStatuses}},
	"GET /api/v1/ops/standing-orders/{id}/executions": {limitParam(50, 500)},
	"GET /api/v1/monitor/metrics": {
		{name: "server_id", desc: "the server", required: true},
		{name: "metric_type", desc: "the metric", enum: monitor.MetricTypes, required: true},
		{name: "from", desc: "start (RFC 3339; default an hour before to)", kind: "date-time"},
		{name: "to", desc: "end (RFC 3339; default now)", kind: "date-time"},
		{name: "step", desc: "bucket width, a Go duration such as 60s or 5m", kind: "duration", def: "60s"},
		{name: "label", desc: "only the series with this label (a disk's mount point)"},
	},
	"GET /api/v1/monitor/metrics/latest": {{name: "server_id", desc: "only this server"}},
	"GET /api/v1/monitor/alerts": {
		{name: "status", desc: "only alerts in this status", enum: alerts.Statuses},
		{name: "severity", desc: "only alerts of this severity", enum: alerts.Severities},
		{name: "rule_id", desc: "only alerts of this rule"},
		{name: "server_id", desc: "only alerts on this server"},
		limitParam(100, 1000),
	},
	"GET /api/v1/monitor/checks/{id}/results":     {limitParam(100, 1000)},
	"GET /api/v1/monitor/checks/{id}/transitions": {limitParam(100, 1000)},
	"GET /api/v1/comm/contacts":                   {{name: "audience", desc: "only contacts in this audience", enum: comm.Audiences}},
	"GET /api/v1/comm/messages": {
		{name: "escalation_id", desc: "only messages of this escalation"},
		{name: "contact_id", desc: "only messages to or from this contact"},
		{name: "channel", desc: "only messages on this channel", enum: messageChannels},
		{name: "direction", desc: "only inbound or outbound messages", enum: []string{comm.Inbound, comm.Outbound}},
		limitParam(100, 1000),
	},
	"GET /api/v1/comm/escalations": {
		{name: "status", desc: "only escalations in this status", enum: escalationStatuses},
		limitParam(100, 1000),
	},
	"POST /api/v1/twilio/voice":   {{name: "escalation", desc: "the escalation the call is about (set by IT0 in the callback URL)"}},
	"GET /api/v1/wecom/callback":  wecomParams(true),
	"POST /api/v1/wecom/callback": wecomParams(false),
}

// pathEnums restricts path parameters, keyed "path#name".
var pathEnums = map[string][]string{
	"/api/v1/comm/escalation-policies/{severity}#severity": comm.Severities,
}

// requiredFields are the request fields a handler refuses to go without (responses need no table: every
// field without omitempty is always present).
var requiredFields = map[reflect.Type][]string{
	reflect.TypeFor[loginRequest]():         {"email", "password"},
	reflect.TypeFor[createAPIKeyRequest]():  {"name"},
	reflect.TypeFor[createUserRequest]():    {"email", "password", "role"},
	reflect.TypeFor[updateUserRequest]():    {"role"},
	reflect.TypeFor[createTenantRequest]():  {"name", "slug", "admin_email", "admin_password"},
	reflect.TypeFor[startTaskRequest]():     {"prompt"},
	reflect.TypeFor[messageRequest]():       {"message"},
	reflect.TypeFor[setEngineRequest]():     {"engine"},
	reflect.TypeFor[skillRequest]():         {"content"},
	reflect.TypeFor[riskRulesBody]():        {"rules"},
	reflect.TypeFor[credentialRequest]():    {"name", "type", "secret"},
	reflect.TypeFor[execRequest]():          {"command"},
	reflect.TypeFor[importRequest]():        {"format", "content"},
	reflect.TypeFor[checkRequest]():         {"name", "type"},
	reflect.TypeFor[contactFields]():        {"name", "audience"},
	reflect.TypeFor[policyRequest]():        {"steps"},
	reflect.TypeFor[answerRequest]():        {"decision"},
	reflect.TypeFor[noticeRequest]():        {"audience", "channels", "body", "key"},
	reflect.TypeFor[ingestRequest]():        {"samples"},
	reflect.TypeFor[createOpsTaskRequest](): {"type", "title"},
	reflect.TypeFor[eventRequest]():         {"event_type"},
	reflect.TypeFor[metricRequest]():        {"server_id", "metric_type", "value"},
}

// optionalBody are the request types whose handler accepts no body at all (it checks ContentLength).
var optionalBody = map[reflect.Type]bool{
	reflect.TypeFor[decideRequest]():     true,
	reflect.TypeFor[runRunbookRequest](): true,
}

// requestSchemaByType describes request types that decode themselves (UnmarshalJSON).
var requestSchemaByType = map[reflect.Type]map[string]any{
	// ops.Strings takes one string or a list of strings.
	reflect.TypeFor[ops.Strings](): {"oneOf": []any{map[string]any{"type": "string"},
		map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}},
}

// enumByType lists the values of named types that are enums in JSON.
var enumByType = map[reflect.Type][]any{
	reflect.TypeFor[auth.Role]():         anys(auth.RoleViewer, auth.RoleOperator, auth.RoleAdmin),
	reflect.TypeFor[auth.Plan]():         anys(auth.PlanFree, auth.PlanPro, auth.PlanEnterprise),
	reflect.TypeFor[auth.TenantStatus](): anys(auth.TenantActive, auth.TenantSuspended, auth.TenantDeleted),
	reflect.TypeFor[checks.Type]():       anys(checks.Types...),
	reflect.TypeFor[checks.State]():      anys(checks.Unknown, checks.Up, checks.Down),
}

// componentNames names the components of types whose Go name is too generic for a client ("pkg.Type" →
// name): inside their package the name is clear, in a generated client it is not.
var componentNames = map[string]string{
	"alerts.Event":      "AlertEvent",
	"checks.Result":     "CheckResult",
	"checks.Transition": "CheckTransition",
}

// enumByField lists the values of plain string and int fields that are enums, keyed "pkg.Type.json_name";
// "*.json_name" applies to that field name in every type.
var enumByField = map[string][]any{
	"*.risk_level":                     riskLevels,
	"*.max_risk_level":                 riskLevels,
	"*.severity":                       anys(comm.Severities...),
	"*.preferred_channel":              anys(comm.Channels...),
	"*.audience":                       anys(comm.Audiences...),
	"agentapi.Session.status":          anys(sessionStatuses...),
	"approval.Approval.status":         anys(approvalStatuses...),
	"ops.Task.status":                  anys(taskStatuses...),
	"ops.StandingOrder.status":         anys(orderStatuses...),
	"ops.Execution.status":             anys(executionStatuses...),
	"comm.Escalation.status":           anys(escalationStatuses...),
	"comm.Escalation.answered_channel": anys(messageChannels...),
	"comm.Message.status":              anys(messageStatuses...),
	"comm.Message.channel":             anys(messageChannels...),
	"comm.Message.direction":           anys(comm.Inbound, comm.Outbound),
	"*.channels":                       anys(comm.Channels...), // arrays: the enum is of the items
	"alerts.Event.status":              anys(alerts.Statuses...),
	"metrics.Source.type":              anys(metrics.SourceTypes...),
	"alerts.Condition.operator":        anys(monitor.Operators...),
	"ops.ThresholdCondition.operator":  anys(monitor.Operators...),
	"answerRequest.decision":           anys("approve", "reject", "instruct"),
	"importRequest.format":             anys("yaml", "json", "ssh_config"),
}

// fieldEnum returns the enum of owner's JSON field name, if it has one.
func fieldEnum(owner reflect.Type, name string) ([]any, bool) {
	pkg := owner.PkgPath()
	pkg = pkg[strings.LastIndex(pkg, "/")+1:]
	if pkg == "httpapi" {
		pkg = ""
	} else {
		pkg += "."
	}
	for _, key := range []string{pkg + owner.Name() + "." + name, "*." + name} {
		if e, ok := enumByField[key]; ok {
			return e, true
		}
	}
	return nil, false
}

func anys[T any](vs ...T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// wecomParams are the signed query parameters of WeCom's callback; the URL check adds echostr.
func wecomParams(check bool) []queryParam {
	ps := []queryParam{
		{name: "msg_signature", desc: "SHA-1 over the sorted token, timestamp, nonce and encrypted payload", required: true},
		{name: "timestamp", desc: "Unix seconds; refused when more than 5 minutes from the server's clock", required: true},
		{name: "nonce", desc: "taken once within the timestamp window", required: true},
	}
	if check {
		ps = append(ps, queryParam{name: "echostr", desc: "the encrypted echo to decrypt and answer", required: true})
	}
	return ps
}
