package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/monitor/checks"
)

// checkRoutes are the health checks of the monitor module.
func (s *Server) checkRoutes() []route {
	if s.Checks == nil {
		return nil
	}
	const p = "/api/v1/monitor/checks"
	// Viewers see checks; operators, who may already run L0 commands, define them.
	view, manage := auth.PermViewDashboard, auth.PermStartTask
	return []route{
		{method: "POST", path: p, summary: "Add a health check (http, tcp, ping, ssh, custom)", perm: manage,
			handler: s.createCheck, req: checkRequest{}, resp: checks.Check{}, status: http.StatusCreated},
		{method: "GET", path: p, summary: "List health checks with their state", perm: view,
			handler: s.listChecks, resp: listResponse[checks.Check]{}},
		{method: "GET", path: p + "/{id}", summary: "Get a health check and its state (unknown, up or down)", perm: view,
			handler: s.getCheck, resp: checks.Check{}},
		{method: "PATCH", path: p + "/{id}", summary: "Change a health check (fields sent are replaced; enabled pauses it)", perm: manage,
			handler: s.patchCheck, req: checkPatch{}, resp: checks.Check{}},
		{method: "DELETE", path: p + "/{id}", summary: "Remove a health check and its history", perm: manage,
			handler: s.deleteCheck, status: http.StatusNoContent},
		{method: "GET", path: p + "/{id}/results", summary: "A check's recent results, newest first (?limit=)", perm: view,
			handler: s.checkResults, resp: listResponse[checks.Result]{}},
		{method: "GET", path: p + "/{id}/transitions", summary: "A check's state changes, newest first (?limit=)", perm: view,
			handler: s.checkTransitions, resp: listResponse[checks.Transition]{}},
	}
}

// checkRequest is a check's definition as a client sends it; the state is the checker's.
type checkRequest struct {
	Name             string      `json:"name"`
	Type             checks.Type `json:"type"`
	Target           string      `json:"target"`
	ServerID         string      `json:"server_id,omitempty"`
	IntervalSeconds  int         `json:"interval_seconds"`
	TimeoutSeconds   int         `json:"timeout_seconds"`
	Retries          int         `json:"retries"`
	JitterSeconds    int         `json:"jitter_seconds,omitempty"`
	ExpectedStatus   int         `json:"expected_status,omitempty"`
	BodyContains     string      `json:"body_contains,omitempty"`
	BodyRegex        string      `json:"body_regex,omitempty"`
	TLSExpiryDays    int         `json:"tls_expiry_days,omitempty"`
	TLSExpiryAction  string      `json:"tls_expiry_action,omitempty"`
	FallbackPort     int         `json:"fallback_port,omitempty"`
	Command          string      `json:"command,omitempty"`
	ExpectedExitCode int         `json:"expected_exit_code,omitempty"`
	OutputMatch      string      `json:"output_match,omitempty"`
}

// checkPatch is checkRequest plus enabled, which pauses (false) or resumes a check.
type checkPatch struct {
	checkRequest
	Enabled *bool `json:"enabled,omitempty"`
}

func (req checkRequest) check() *checks.Check {
	return &checks.Check{Name: req.Name, Type: req.Type, Target: req.Target, ServerID: req.ServerID, IntervalSeconds: req.IntervalSeconds,
		TimeoutSeconds: req.TimeoutSeconds, Retries: req.Retries, JitterSeconds: req.JitterSeconds, ExpectedStatus: req.ExpectedStatus,
		BodyContains: req.BodyContains, BodyRegex: req.BodyRegex, TLSExpiryDays: req.TLSExpiryDays, TLSExpiryAction: req.TLSExpiryAction,
		FallbackPort: req.FallbackPort, Command: req.Command, ExpectedExitCode: req.ExpectedExitCode, OutputMatch: req.OutputMatch}
}

func (s *Server) createCheck(w http.ResponseWriter, r *http.Request) error {
	var req checkRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	c := req.check()
	if err := s.Checks.Create(r.Context(), c); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) listChecks(w http.ResponseWriter, r *http.Request) error {
	list, err := s.Checks.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[checks.Check]{Items: nonNil(list)})
	return nil
}

func (s *Server) getCheck(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Checks.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// patchCheck applies a JSON merge patch of definition fields; unknown fields (and the state) are refused.
func (s *Server) patchCheck(w http.ResponseWriter, r *http.Request) error {
	raw, err := readBody(w, r)
	if err != nil {
		return err
	}
	var p checkPatch
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return decodeError(err)
	}
	c, err := s.Checks.Update(r.Context(), r.PathValue("id"), raw)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) deleteCheck(w http.ResponseWriter, r *http.Request) error {
	if err := s.Checks.Delete(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) checkResults(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	list, err := s.Checks.Results(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[checks.Result]{Items: nonNil(list)})
	return nil
}

func (s *Server) checkTransitions(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	list, err := s.Checks.Transitions(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[checks.Transition]{Items: nonNil(list)})
	return nil
}
