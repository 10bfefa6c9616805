package httpapi

import (
	"net/http"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/guard/hook"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/ops"
)

// route is one endpoint: what it answers, who may call it, and what it takes and returns (for OpenAPI).
type route struct {
	method, path string
	summary      string
	public       bool            // no credentials needed
	perm         auth.Permission // needed on top of authentication; "" = any signed-in user
	handler      func(http.ResponseWriter, *http.Request) error
	req, resp    any  // example values of the request and response bodies; nil for none
	status       int  // success status; default 200
	limited      bool // rate-limited: may answer 429 (public routes always may)
}

// apiRoutes is the whole REST surface. Routes of a module that is not running here are left out.
func (s *Server) apiRoutes() []route {
	var rs []route
	if s.Auth != nil {
		rs = append(rs,
			route{method: "POST", path: "/api/v1/auth/login", summary: "Sign in with email and password", public: true,
				handler: s.login, req: loginRequest{}, resp: auth.Token{}},
			route{method: "POST", path: "/api/v1/auth/refresh", summary: "Trade a valid access token for a fresh one (not API keys)",
				handler: s.refresh, resp: auth.Token{}},
			route{method: "GET", path: "/api/v1/auth/me", summary: "The signed-in user, role and tenant",
				handler: s.me, resp: meResponse{}},
			route{method: "GET", path: "/api/v1/auth/tenant", summary: "The caller's tenant, plan and quotas",
				handler: s.ownTenant, resp: auth.Tenant{}},
			route{method: "POST", path: "/api/v1/auth/api-keys", summary: "Create an API key (shown once)", perm: auth.PermManageAPIKeys,
				handler: s.createAPIKey, req: createAPIKeyRequest{}, resp: createAPIKeyResponse{}, status: http.StatusCreated},
			route{method: "GET", path: "/api/v1/auth/api-keys", summary: "List API keys", perm: auth.PermManageAPIKeys,
				handler: s.listAPIKeys, resp: listResponse[auth.APIKey]{}},
			route{method: "DELETE", path: "/api/v1/auth/api-keys/{id}", summary: "Revoke an API key", perm: auth.PermManageAPIKeys,
				handler: s.revokeAPIKey, status: http.StatusNoContent},
			route{method: "POST", path: "/api/v1/auth/users", summary: "Create a user in the caller's tenant", perm: auth.PermManageUsers,
				handler: s.createUser, req: createUserRequest{}, resp: auth.User{}, status: http.StatusCreated},
			route{method: "GET", path: "/api/v1/auth/users", summary: "List the tenant's users", perm: auth.PermManageUsers,
				handler: s.listUsers, resp: listResponse[auth.User]{}},
			route{method: "GET", path: "/api/v1/auth/users/{id}", summary: "Get a user", perm: auth.PermManageUsers,
				handler: s.getUser, resp: auth.User{}},
			route{method: "PATCH", path: "/api/v1/auth/users/{id}", summary: "Change a user's role", perm: auth.PermManageUsers,
				handler: s.updateUser, req: updateUserRequest{}, resp: auth.User{}},
			route{method: "POST", path: "/api/v1/auth/users/{id}/disable", summary: "Disable a user: its API keys and tokens stop working at once", perm: auth.PermManageUsers,
				handler: s.setUserStatus(auth.UserDisabled), resp: auth.User{}},
			route{method: "POST", path: "/api/v1/auth/users/{id}/enable", summary: "Re-enable a disabled user (revoked keys stay revoked)", perm: auth.PermManageUsers,
				handler: s.setUserStatus(auth.UserActive), resp: auth.User{}},
			route{method: "DELETE", path: "/api/v1/auth/users/{id}", summary: "Delete a user with its API keys (not the last admin)", perm: auth.PermManageUsers,
				handler: s.deleteUser, status: http.StatusNoContent},
			route{method: "POST", path: "/api/v1/auth/password", summary: "Change your password; earlier tokens stop working, a new one is returned",
				handler: s.changePassword, req: changePasswordRequest{}, resp: auth.Token{}},
			route{method: "POST", path: "/api/v1/auth/tenants", summary: "Provision a tenant with its first admin", perm: auth.PermManageTenants,
				handler: s.createTenant, req: createTenantRequest{}, resp: createTenantResponse{}, status: http.StatusCreated},
			route{method: "GET", path: "/api/v1/auth/tenants", summary: "List tenants", perm: auth.PermManageTenants,
				handler: s.listTenants, resp: listResponse[auth.Tenant]{}},
			route{method: "GET", path: "/api/v1/auth/tenants/{id}", summary: "Get a tenant", perm: auth.PermManageTenants,
				handler: s.getTenant, resp: auth.Tenant{}},
			route{method: "POST", path: "/api/v1/auth/tenants/{id}/suspend", summary: "Suspend a tenant (403 on everything)", perm: auth.PermManageTenants,
				handler: s.setTenantStatus(auth.TenantSuspended), resp: auth.Tenant{}},
			route{method: "POST", path: "/api/v1/auth/tenants/{id}/resume", summary: "Resume a suspended tenant", perm: auth.PermManageTenants,
				handler: s.setTenantStatus(auth.TenantActive), resp: auth.Tenant{}},
			route{method: "DELETE", path: "/api/v1/auth/tenants/{id}", summary: "Delete a tenant and all its data (?confirm=<slug>)", perm: auth.PermManageTenants,
				handler: s.deleteTenant, status: http.StatusNoContent},
		)
	}
	if s.Audit != nil {
		rs = append(rs,
			route{method: "GET", path: "/api/v1/audit/logs", summary: "Query the audit log (filters, cursor pagination)", perm: auth.PermViewAudit,
				handler: s.auditLogs, resp: auditLogsResponse{}},
			route{method: "GET", path: "/api/v1/audit/verify", summary: "Verify the audit hash chain", perm: auth.PermViewAudit,
				handler: s.auditVerify, resp: verifyResponse{}},
			route{method: "GET", path: "/api/v1/audit/export", summary: "Export the audit log as JSON Lines", perm: auth.PermViewAudit,
				handler: s.auditExport},
		)
	}
	if s.Inventory != nil {
		const inv = "/api/v1/inventory"
		view, manage, run := auth.PermViewDashboard, auth.PermManageServers, auth.PermStartTask
		rs = append(rs,
			route{method: "POST", path: inv + "/servers", summary: "Add a server", perm: manage,
				handler: s.createServer, req: serverFields{}, resp: inventory.Server{}, status: http.StatusCreated},
			route{method: "GET", path: inv + "/servers", summary: "List servers (?environment=&role=&cluster_id=&tag=a,b)", perm: view,
				handler: s.listServers, resp: listResponse[inventory.Server]{}},
			route{method: "GET", path: inv + "/servers/{id}", summary: "Get a server", perm: view,
				handler: s.getServer, resp: inventory.Server{}},
			route{method: "PATCH", path: inv + "/servers/{id}", summary: "Change a server (fields sent are replaced)", perm: manage,
				handler: s.updateServer, req: serverFields{}, resp: inventory.Server{}},
			route{method: "DELETE", path: inv + "/servers/{id}", summary: "Remove a server (409 while it is a jump host)", perm: manage,
				handler: s.deleteServer, status: http.StatusNoContent},
			route{method: "POST", path: inv + "/servers/{id}/check", summary: "Check reachability through the jump chain, hop by hop", perm: run,
				handler: s.checkServer, resp: checkResponse{}},
			route{method: "POST", path: inv + "/servers/import", summary: "Import servers from YAML, JSON or ssh_config", perm: manage,
				handler: s.importServers, req: importRequest{}, resp: inventory.ImportResult{}},
			route{method: "POST", path: inv + "/clusters", summary: "Add a cluster (kubeconfig sealed)", perm: manage,
				handler: s.createCluster, req: clusterRequest{}, resp: inventory.Cluster{}, status: http.StatusCreated},
			route{method: "GET", path: inv + "/clusters", summary: "List clusters", perm: view,
				handler: s.listClusters, resp: listResponse[inventory.Cluster]{}},
			route{method: "GET", path: inv + "/clusters/{id}", summary: "Get a cluster", perm: view,
				handler: s.getCluster, resp: inventory.Cluster{}},
			route{method: "PATCH", path: inv + "/clusters/{id}", summary: "Change a cluster", perm: manage,
				handler: s.updateCluster, req: clusterRequest{}, resp: inventory.Cluster{}},
			route{method: "DELETE", path: inv + "/clusters/{id}", summary: "Remove a cluster (409 while servers are in it)", perm: manage,
				handler: s.deleteCluster, status: http.StatusNoContent},
			route{method: "POST", path: inv + "/credentials", summary: "Add a credential (the secret is write-only)", perm: manage,
				handler: s.createCredential, req: credentialRequest{}, resp: inventory.Credential{}, status: http.StatusCreated},
			route{method: "GET", path: inv + "/credentials", summary: "List credentials (never their values)", perm: manage,
				handler: s.listCredentials, resp: listResponse[inventory.Credential]{}},
			route{method: "GET", path: inv + "/credentials/{id}", summary: "Get a credential (never its value)", perm: manage,
				handler: s.getCredential, resp: inventory.Credential{}},
			route{method: "DELETE", path: inv + "/credentials/{id}", summary: "Remove a credential (409 while servers use it)", perm: manage,
				handler: s.deleteCredential, status: http.StatusNoContent},
			route{method: "POST", path: inv + "/exec", summary: "Run a guarded command on servers (JSON, or NDJSON with Accept: application/x-ndjson)", perm: run,
				handler: s.exec, req: execRequest{}, resp: execResponse{}},
			route{method: "GET", path: inv + "/command-records", summary: "Recent commands (?server_id=&session_id=&limit=)", perm: view,
				handler: s.commandRecords, resp: listResponse[inventory.CommandRecord]{}},
		)
	}
	if s.Agent != nil {
		const ag = "/api/v1/agent"
		view, run := auth.PermViewDashboard, auth.PermStartTask
		rs = append(rs,
			route{method: "POST", path: ag + "/tasks", summary: "Start an agent task (opens a session)", perm: run,
				handler: s.startTask, req: startTaskRequest{}, resp: startTaskResponse{}, status: http.StatusCreated},
			route{method: "GET", path: ag + "/sessions", summary: "List sessions (?status=&limit=)", perm: view,
				handler: s.listSessions, resp: listResponse[agent.Session]{}},
			route{method: "GET", path: ag + "/sessions/{id}", summary: "Get a session", perm: view,
				handler: s.getSession, resp: agent.Session{}},
			route{method: "GET", path: ag + "/sessions/{id}/events", summary: "A session's events after a sequence number (?after=SEQ)", perm: view,
				handler: s.sessionEvents, resp: eventsResponse{}},
			route{method: "POST", path: ag + "/sessions/{id}/messages", summary: "Continue a session with a message", perm: run,
				handler: s.sendMessage, req: messageRequest{}, status: http.StatusAccepted},
			route{method: "POST", path: ag + "/sessions/{id}/cancel", summary: "Cancel a session", perm: run,
				handler: s.cancelSession, resp: agent.Session{}},
			route{method: "GET", path: ag + "/engines", summary: "Engines with health, and the tenant's active one", perm: view,
				handler: s.listEngines, resp: listResponse[agent.EngineInfo]{}},
			route{method: "POST", path: ag + "/engine", summary: "Switch the tenant's engine", perm: auth.PermSwitchEngine,
				handler: s.setEngine, req: setEngineRequest{}, resp: listResponse[agent.EngineInfo]{}},
			route{method: "GET", path: ag + "/approvals", summary: "Approvals (?status=pending&session_id=)", perm: view,
				handler: s.listApprovals, resp: listResponse[agent.Approval]{}},
			route{method: "GET", path: ag + "/approvals/{id}", summary: "Get an approval", perm: view,
				handler: s.getApproval, resp: agent.Approval{}},
			route{method: "POST", path: ag + "/approvals/{id}/approve", summary: "Approve (L2 needs an admin; operators may confirm L1)", perm: auth.PermApproveL1,
				handler: s.decide(true), req: decideRequest{}, resp: agent.Approval{}},
			route{method: "POST", path: ag + "/approvals/{id}/reject", summary: "Reject an approval", perm: auth.PermApproveL1,
				handler: s.decide(false), req: decideRequest{}, resp: agent.Approval{}},
			route{method: "POST", path: ag + "/hook/pre-tool-use", summary: "Claude Code PreToolUse hook decisions (used by it0 hook)", perm: run,
				handler: s.hookPreToolUse, req: hook.Request{}, resp: hook.Response{}},
			route{method: "GET", path: ag + "/tools", summary: "The agent's tools (used by it0 mcp)", perm: run,
				handler: s.listTools, resp: toolsResponse{}},
			route{method: "POST", path: ag + "/tools/{name}", summary: "Call a tool in a session (header X-IT0-Session-Id)", perm: run,
				handler: s.callTool, req: toolCallRequest{}, resp: toolCallResponse{}},
			route{method: "GET", path: ag + "/skills", summary: "List the tenant's skills (name, description, SKILL.md)", perm: view,
				handler: s.listSkills, resp: listResponse[agent.SkillRecord]{}},
			route{method: "POST", path: ag + "/skills", summary: "Add or replace a skill from its SKILL.md", perm: auth.PermManageSettings,
				handler: s.saveSkill, req: skillRequest{}, resp: agent.SkillRecord{}, status: http.StatusCreated},
			route{method: "GET", path: ag + "/skills/{name}", summary: "Get a skill", perm: view,
				handler: s.getSkill, resp: agent.SkillRecord{}},
			route{method: "PUT", path: ag + "/skills/{name}", summary: "Replace a skill (the name must match the frontmatter)", perm: auth.PermManageSettings,
				handler: s.saveSkill, req: skillRequest{}, resp: agent.SkillRecord{}},
			route{method: "DELETE", path: ag + "/skills/{name}", summary: "Delete a skill", perm: auth.PermManageSettings,
				handler: s.deleteSkill, status: http.StatusNoContent},
			route{method: "POST", path: ag + "/skills/sync", summary: "Sync skills between the database and the workspace directory", perm: auth.PermManageSettings,
				handler: s.syncSkills, resp: agent.SyncResult{}},
			route{method: "GET", path: ag + "/risk-rules", summary: "The tenant's guard overrides (YAML)", perm: auth.PermManageSettings,
				handler: s.getRiskRules, resp: riskRulesBody{}},
			route{method: "PUT", path: ag + "/risk-rules", summary: "Replace the tenant's guard overrides (may raise levels, never lower them)", perm: auth.PermManageSettings,
				handler: s.putRiskRules, req: riskRulesBody{}, resp: riskRulesBody{}},
			route{method: "GET", path: "/ws/agent", summary: "WebSocket: a session's events (?session=ID&after=SEQ&token=…)", perm: view,
				handler: s.agentSocket},
		)
	}
	if s.Ops != nil && s.Agent != nil {
		const op = "/api/v1/ops"
		view, run, manage := auth.PermViewDashboard, auth.PermStartTask, auth.PermManageSettings
		rs = append(rs,
			route{method: "POST", path: op + "/tasks", summary: "Create an ops task (the agent starts on it)", perm: run,
				handler: s.createOpsTask, req: createOpsTaskRequest{}, resp: ops.Task{}, status: http.StatusCreated},
			route{method: "GET", path: op + "/tasks", summary: "List ops tasks (?status=&type=)", perm: view,
				handler: s.listOpsTasks, resp: listResponse[ops.Task]{}},
			route{method: "GET", path: op + "/tasks/{id}", summary: "Get an ops task", perm: view,
				handler: s.getOpsTask, resp: ops.Task{}},
			route{method: "POST", path: op + "/tasks/{id}/cancel", summary: "Cancel an ops task and its session", perm: run,
				handler: s.cancelOpsTask, resp: ops.Task{}},
			route{method: "POST", path: op + "/runbooks", summary: "Create a runbook", perm: manage,
				handler: s.createRunbook, req: runbookFields{}, resp: ops.Runbook{}, status: http.StatusCreated},
			route{method: "GET", path: op + "/runbooks", summary: "List runbooks (shipped ones are seeded)", perm: view,
				handler: s.listRunbooks, resp: listResponse[ops.Runbook]{}},
			route{method: "GET", path: op + "/runbooks/{id}", summary: "Get a runbook (by id or name)", perm: view,
				handler: s.getRunbook, resp: ops.Runbook{}},
			route{method: "PATCH", path: op + "/runbooks/{id}", summary: "Change a runbook (auto_approve = emergency mode)", perm: manage,
				handler: s.updateRunbook, req: runbookFields{}, resp: ops.Runbook{}},
			route{method: "DELETE", path: op + "/runbooks/{id}", summary: "Delete a runbook", perm: manage,
				handler: s.deleteRunbook, status: http.StatusNoContent},
			route{method: "POST", path: op + "/runbooks/{id}/run", summary: "Run a runbook: an ops task bounded by its tools and risk level", perm: run,
				handler: s.runRunbook, req: runRunbookRequest{}, resp: ops.Task{}, status: http.StatusCreated},
			route{method: "GET", path: op + "/approval-timeouts", summary: "The tenant's approval timeouts (L1 auto-approves, L2 auto-rejects)", perm: view,
				handler: s.getApprovalTimeouts, resp: approvalTimeouts{}},
			route{method: "PUT", path: op + "/approval-timeouts", summary: "Set the tenant's approval timeouts (seconds; 0 keeps one)", perm: manage,
				handler: s.putApprovalTimeouts, req: approvalTimeouts{}, resp: approvalTimeouts{}},
			route{method: "GET", path: op + "/approvals", summary: "The approval queue (?status=pending|approved|rejected|expired|all)", perm: view,
				handler: s.listOpsApprovals, resp: listResponse[agent.Approval]{}},
			route{method: "POST", path: op + "/approvals/{id}/approve", summary: "Approve (L2 needs an admin; operators may confirm L1)", perm: auth.PermApproveL1,
				handler: s.decide(true), req: decideRequest{}, resp: agent.Approval{}},
			route{method: "POST", path: op + "/approvals/{id}/reject", summary: "Reject an approval", perm: auth.PermApproveL1,
				handler: s.decide(false), req: decideRequest{}, resp: agent.Approval{}},
		)
	}
	if s.Orders != nil {
		const so = "/api/v1/ops/standing-orders"
		view, manage := auth.PermViewDashboard, auth.PermManageSettings
		rs = append(rs,
			route{method: "POST", path: so, summary: "Create a standing order (validated; errors name each field)", perm: manage,
				handler: s.createOrder, req: ops.StandingOrder{}, resp: ops.StandingOrder{}, status: http.StatusCreated},
			route{method: "GET", path: so, summary: "List standing orders (?status=active|paused|archived)", perm: view,
				handler: s.listOrders, resp: listResponse[ops.StandingOrder]{}},
			route{method: "GET", path: so + "/{id}", summary: "Get a standing order", perm: view,
				handler: s.getOrder, resp: ops.StandingOrder{}},
			route{method: "PATCH", path: so + "/{id}", summary: "Change a standing order (JSON merge patch; audited with a diff)", perm: manage,
				handler: s.patchOrder, req: ops.StandingOrder{}, resp: ops.StandingOrder{}},
			route{method: "POST", path: so + "/{id}/pause", summary: "Pause a standing order", perm: manage,
				handler: s.setOrderStatus("paused"), resp: ops.StandingOrder{}},
			route{method: "POST", path: so + "/{id}/resume", summary: "Resume a standing order", perm: manage,
				handler: s.setOrderStatus("active"), resp: ops.StandingOrder{}},
			route{method: "POST", path: so + "/{id}/archive", summary: "Archive a standing order", perm: manage,
				handler: s.setOrderStatus("archived"), resp: ops.StandingOrder{}},
			route{method: "POST", path: so + "/{id}/run", summary: "Run a standing order now (manual trigger)", perm: auth.PermStartTask,
				handler: s.runOrder, resp: ops.Execution{}, status: http.StatusCreated},
			route{method: "POST", path: "/api/v1/ops/events", summary: "Deliver an event (alert_fired, deployment_completed, …) to event-triggered orders", perm: auth.PermStartTask,
				handler: s.postEvent, req: eventRequest{}},
			route{method: "POST", path: "/api/v1/ops/metrics", summary: "Feed a metric sample to threshold-triggered orders", perm: auth.PermStartTask,
				handler: s.postMetric, req: metricRequest{}},
			route{method: "GET", path: so + "/{id}/executions", summary: "Runs of a standing order", perm: view,
				handler: s.orderExecutions, resp: listResponse[ops.Execution]{}},
			route{method: "GET", path: "/api/v1/ops/report-settings", summary: "When and where the daily digest of runs goes (tenant time zone)", perm: view,
				handler: s.getReportSettings, resp: ops.ReportSettings{}},
			route{method: "PUT", path: "/api/v1/ops/report-settings", summary: "Set the digest's time zone, time (HH:MM) and whether it is sent", perm: manage,
				handler: s.putReportSettings, req: ops.ReportSettings{}, resp: ops.ReportSettings{}},
		)
	}
	rs = append(rs, s.monitoringRoutes()...)
	rs = append(rs, s.checkRoutes()...)
	rs = append(rs, s.commRoutes()...)
	rs = append(rs, s.wecomRoutes()...)
	rs = append(rs, s.voiceRoutes()...)
	return rs
}

// listResponse is the envelope of every list endpoint.
type listResponse[T any] struct {
	Items []T `json:"items"`
}

func list[T any](items []T) listResponse[T] {
	if items == nil {
		items = []T{}
	}
	return listResponse[T]{Items: items}
}
