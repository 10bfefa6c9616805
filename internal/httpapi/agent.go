package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard/hook"
	"github.com/it0/it0/internal/ops/approval"
)

type startTaskRequest struct {
	Prompt       string   `json:"prompt"`
	Engine       string   `json:"engine,omitempty"`
	Skill        string   `json:"skill,omitempty"`
	SkillArgs    string   `json:"skill_args,omitempty"`
	ServerIDs    []string `json:"server_ids,omitempty"`
	MaxTurns     int      `json:"max_turns,omitempty"`
	MaxBudgetUSD float64  `json:"max_budget_usd,omitempty"`
}

type startTaskResponse struct {
	SessionID string `json:"session_id"`
	TaskID    string `json:"task_id"`
	Status    string `json:"status"`
	Engine    string `json:"engine"`
}

func (s *Server) startTask(w http.ResponseWriter, r *http.Request) error {
	var req startTaskRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sess, task, err := s.Agent.StartTask(r.Context(), agent.StartParams{Prompt: req.Prompt, Engine: req.Engine, Skill: req.Skill,
		SkillArgs: req.SkillArgs, ServerIDs: req.ServerIDs, MaxTurns: req.MaxTurns, MaxBudgetUSD: req.MaxBudgetUSD})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, startTaskResponse{SessionID: sess.ID, TaskID: task.ID, Status: sess.Status, Engine: sess.Engine})
	return nil
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	list, err := s.Agent.Sessions(r.Context(), r.URL.Query().Get("status"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[agent.Session]{Items: nonNil(list)})
	return nil
}

func nonNil[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.Agent.Session(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sess)
	return nil
}

type eventsResponse struct {
	Events []agent.Event `json:"events"`
}

func (s *Server) sessionEvents(w http.ResponseWriter, r *http.Request) error {
	after, err := queryInt(r, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 1000, 1, 10000)
	if err != nil {
		return err
	}
	evs, err := s.Agent.Events(r.Context(), r.PathValue("id"), int64(after), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, eventsResponse{Events: nonNil(evs)})
	return nil
}

type messageRequest struct {
	Message string `json:"message"`
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request) error {
	var req messageRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	task, err := s.Agent.SendMessage(r.Context(), r.PathValue("id"), req.Message)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"session_id": r.PathValue("id"), "task_id": task.ID})
	return nil
}

func (s *Server) cancelSession(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.Agent.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) listEngines(w http.ResponseWriter, r *http.Request) error {
	list, err := s.Agent.Engines(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[agent.EngineInfo]{Items: list})
	return nil
}

type setEngineRequest struct {
	Engine string `json:"engine"`
}

func (s *Server) setEngine(w http.ResponseWriter, r *http.Request) error {
	var req setEngineRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.Agent.SetEngine(r.Context(), req.Engine); err != nil {
		return err
	}
	return s.listEngines(w, r)
}

func (s *Server) listApprovals(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	list, err := s.Approvals.List(r.Context(), q.Get("session_id"), q.Get("status"), 200)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[approval.Approval]{Items: nonNil(list)})
	return nil
}

func (s *Server) getApproval(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Approvals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

type decideRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (s *Server) decide(approve bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req decideRequest
		if r.ContentLength != 0 {
			if err := decode(w, r, &req); err != nil {
				return err
			}
		}
		a, err := s.Approvals.Decide(r.Context(), r.PathValue("id"), approval.Decision{Approve: approve, Reason: req.Reason, Via: approval.ViaAPI})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, a)
		return nil
	}
}

// sessionHeader names the agent session a hook or MCP call belongs to.
const sessionHeader = "X-IT0-Session-Id"

func (s *Server) hookPreToolUse(w http.ResponseWriter, r *http.Request) error {
	var req hook.Request
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sid := r.Header.Get(sessionHeader)
	if sid == "" {
		sid = req.SessionID
	}
	if sid == "" {
		return errs.Invalidf("session_id", "session_id is required")
	}
	d, reason, id, err := s.Agent.HookDecision(r.Context(), sid, req.ToolName, req.Command, req.Hosts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hook.Response{Decision: d, Reason: reason, ApprovalID: id})
	return nil
}

type toolsResponse struct {
	Tools []agent.Tool `json:"tools"`
}

func (s *Server) listTools(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, toolsResponse{Tools: s.Agent.ToolSpecs()})
	return nil
}

type toolCallRequest struct {
	Input json.RawMessage `json:"input"`
}

type toolCallResponse struct {
	Output  string `json:"output"`
	IsError bool   `json:"is_error"`
}

func (s *Server) callTool(w http.ResponseWriter, r *http.Request) error {
	var req toolCallRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sid := r.Header.Get(sessionHeader)
	if sid == "" {
		return errs.New(errs.Invalid, "header %s is required", sessionHeader).WithHint("tools run inside an agent session")
	}
	if _, err := s.Agent.Session(r.Context(), sid); err != nil {
		return err
	}
	res, err := s.Agent.CallTool(r.Context(), sid, r.PathValue("name"), req.Input)
	var ar *agent.ApprovalRequired
	switch {
	case errors.As(err, &ar):
		res = agent.ToolResult{IsError: true, Output: agent.FormatApprovalMarker(ar.ApprovalID, ar.RiskLevel,
			"a human must approve this command first; the session pauses until then")}
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, toolCallResponse{Output: res.Output, IsError: res.IsError})
	return nil
}

// agentSocket streams a session's events over WebSocket: first the stored events after ?after=SEQ, then
// live ones. It subscribes before reading the store and skips what it already sent, so nothing falls in
// the gap between replay and live.
//
// Each WebSocket message holds one or more events, one JSON object per line: when events queue up (a
// fast engine, many subscribers) they share one frame and one write, which keeps delivery latency flat;
// a lone event is sent at once, alone.
func (s *Server) agentSocket(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sid := r.URL.Query().Get("session")
	after, err := queryInt(r, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	if _, err := s.Agent.Session(ctx, sid); err != nil {
		return err
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.WSOrigins, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil // Accept has answered the client
	}
	defer c.CloseNow()
	sub := s.Agent.Hub().Subscribe(sid)
	defer s.Agent.Hub().Unsubscribe(sub)
	// Events are published before they are stored: wait until every event published before this
	// subscription is stored, so the replay below holds it (later ones arrive on sub).
	s.Agent.Settle(sid)
	ctx = c.CloseRead(ctx) // we only send; this notices the client going away
	sent := int64(after)
	var batch []byte
	// A client that stops reading is cut off after 10 s; one timer for the connection is much cheaper than
	// a deadline context per write, which matters with hundreds of subscribers per session.
	stalled := time.AfterFunc(time.Hour, func() { c.CloseNow() })
	defer stalled.Stop()
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		stalled.Reset(10 * time.Second)
		err := c.Write(ctx, websocket.MessageText, batch[:len(batch)-1]) // without the last newline
		stalled.Stop()
		batch = batch[:0]
		return err
	}
	for {
		evs, err := s.Agent.Events(ctx, sid, sent, 500)
		if err != nil {
			c.Close(websocket.StatusInternalError, "read events")
			return nil
		}
		for _, e := range evs {
			b, err := json.Marshal(e)
			if err != nil {
				return nil
			}
			batch = append(append(batch, b...), '\n')
			sent = e.Seq
		}
		if err := send(); err != nil {
			return nil
		}
		if len(evs) < 500 {
			break
		}
	}
	// fill reads from the store what came before seq and was not received live: events of a session that
	// runs on another replica, published there before this subscription began (or dropped on the way),
	// and perhaps not stored yet; so it waits for them briefly.
	fill := func(seq int64) bool {
		for try := 0; try < 50 && sent < seq-1; try++ {
			if try > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			evs, err := s.Agent.Events(ctx, sid, sent, int(min(seq-1-sent, 500)))
			if err != nil {
				return false
			}
			for _, e := range evs {
				if e.Seq != sent+1 || e.Seq >= seq {
					break
				}
				b, err := json.Marshal(e)
				if err != nil {
					return false
				}
				batch = append(append(batch, b...), '\n')
				sent = e.Seq
			}
		}
		return sent == seq-1
	}
	add := func(m agent.Message) bool {
		if m.Seq != 0 && m.Seq <= sent {
			return true // already sent from the store
		}
		if m.Seq > sent+1 && !fill(m.Seq) {
			return false
		}
		batch = append(append(batch, m.JSON...), '\n')
		if m.Seq != 0 {
			sent = m.Seq
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			c.Close(websocket.StatusNormalClosure, "")
			return nil
		case m, ok := <-sub.C:
			if !ok {
				c.Close(websocket.StatusTryAgainLater, "too slow; reconnect with ?after="+strconv.FormatInt(sent, 10))
				return nil
			}
			ok = add(m)
		drain:
			for ok && len(batch) < 256<<10 {
				select {
				case m, open := <-sub.C:
					if !open {
						break drain
					}
					ok = add(m)
				default:
					break drain
				}
			}
			if err := send(); err != nil {
				return nil
			}
			if !ok {
				c.Close(websocket.StatusTryAgainLater, "events missing; reconnect with ?after="+strconv.FormatInt(sent, 10))
				return nil
			}
		}
	}
}

type skillRequest struct {
	// Content is the whole SKILL.md: YAML frontmatter (name, description, …) and the Markdown body.
	Content string `json:"content"`
}

func (s *Server) listSkills(w http.ResponseWriter, r *http.Request) error {
	list, err := s.Agent.Skills(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[agent.SkillRecord]{Items: nonNil(list)})
	return nil
}

func (s *Server) getSkill(w http.ResponseWriter, r *http.Request) error {
	sk, err := s.Agent.Skill(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sk)
	return nil
}

// saveSkill serves POST /skills (the name comes from the frontmatter) and PUT /skills/{name}.
func (s *Server) saveSkill(w http.ResponseWriter, r *http.Request) error {
	var req skillRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	rec, created, err := s.Agent.SaveSkill(r.Context(), r.PathValue("name"), req.Content)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, rec)
	return nil
}

func (s *Server) deleteSkill(w http.ResponseWriter, r *http.Request) error {
	if err := s.Agent.DeleteSkill(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) syncSkills(w http.ResponseWriter, r *http.Request) error {
	res, err := s.Agent.SyncSkills(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

type riskRulesBody struct {
	// Rules is the tenant's overrides in the format of ops-config/risk-patterns.yaml.
	Rules string `json:"rules"`
}

func (s *Server) getRiskRules(w http.ResponseWriter, r *http.Request) error {
	y, err := s.Agent.RiskRules(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, riskRulesBody{Rules: y})
	return nil
}

func (s *Server) putRiskRules(w http.ResponseWriter, r *http.Request) error {
	var req riskRulesBody
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.Agent.SetRiskRules(r.Context(), req.Rules); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}
