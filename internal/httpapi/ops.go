package httpapi

import (
	"net/http"
	"time"

	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
)

type createOpsTaskRequest struct {
	Type        string            `json:"type"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	Priority    string            `json:"priority,omitempty"`
	ServerIDs   []string          `json:"target_server_ids,omitempty"`
	RunbookID   string            `json:"runbook_id,omitempty"`
	Variables   map[string]string `json:"variables,omitempty"`
}

func (s *Server) createOpsTask(w http.ResponseWriter, r *http.Request) error {
	var req createOpsTaskRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	t, err := s.Ops.CreateTask(r.Context(), ops.CreateTaskParams{Type: req.Type, Title: req.Title, Description: req.Description,
		Priority: req.Priority, ServerIDs: req.ServerIDs, RunbookID: req.RunbookID, Variables: req.Variables})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) listOpsTasks(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	list, err := s.Ops.Tasks(r.Context(), r.URL.Query().Get("status"), r.URL.Query().Get("type"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[ops.Task]{Items: nonNil(list)})
	return nil
}

func (s *Server) getOpsTask(w http.ResponseWriter, r *http.Request) error {
	t, err := s.Ops.Task(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) cancelOpsTask(w http.ResponseWriter, r *http.Request) error {
	t, err := s.Ops.CancelTask(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// runbookFields are a runbook's writable fields; pointers tell PATCH which were sent.
type runbookFields struct {
	Name           *string   `json:"name"`
	Description    *string   `json:"description"`
	PromptTemplate *string   `json:"prompt_template"`
	AllowedTools   *[]string `json:"allowed_tools"`
	MaxRiskLevel   *int      `json:"max_risk_level"`
	AutoApprove    *bool     `json:"auto_approve"`
	TriggerType    *string   `json:"trigger_type"`
	Enabled        *bool     `json:"enabled"`
}

func (f *runbookFields) apply(rb *ops.Runbook) {
	if f.Name != nil {
		rb.Name = *f.Name
	}
	if f.Description != nil {
		rb.Description = *f.Description
	}
	if f.PromptTemplate != nil {
		rb.PromptTemplate = *f.PromptTemplate
	}
	if f.AllowedTools != nil {
		rb.AllowedTools = *f.AllowedTools
	}
	if f.MaxRiskLevel != nil {
		rb.MaxRiskLevel = *f.MaxRiskLevel
	}
	if f.AutoApprove != nil {
		rb.AutoApprove = *f.AutoApprove
	}
	if f.TriggerType != nil {
		rb.TriggerType = *f.TriggerType
	}
	if f.Enabled != nil {
		rb.Enabled = *f.Enabled
	}
}

func (s *Server) createRunbook(w http.ResponseWriter, r *http.Request) error {
	var req runbookFields
	if err := decode(w, r, &req); err != nil {
		return err
	}
	rb := ops.Runbook{Enabled: true}
	req.apply(&rb)
	if err := s.Ops.SaveRunbook(r.Context(), &rb); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, rb)
	return nil
}

func (s *Server) listRunbooks(w http.ResponseWriter, r *http.Request) error {
	list, err := s.Ops.Runbooks(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[ops.Runbook]{Items: nonNil(list)})
	return nil
}

func (s *Server) getRunbook(w http.ResponseWriter, r *http.Request) error {
	rb, err := s.Ops.Runbook(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rb)
	return nil
}

func (s *Server) updateRunbook(w http.ResponseWriter, r *http.Request) error {
	var req runbookFields
	if err := decode(w, r, &req); err != nil {
		return err
	}
	rb, err := s.Ops.Runbook(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	req.apply(rb)
	if err := s.Ops.SaveRunbook(r.Context(), rb); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rb)
	return nil
}

func (s *Server) deleteRunbook(w http.ResponseWriter, r *http.Request) error {
	if err := s.Ops.DeleteRunbook(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type runRunbookRequest struct {
	Variables map[string]string `json:"variables,omitempty"`
	ServerIDs []string          `json:"target_server_ids,omitempty"`
}

func (s *Server) runRunbook(w http.ResponseWriter, r *http.Request) error {
	var req runRunbookRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	t, err := s.Ops.RunRunbook(r.Context(), r.PathValue("id"), req.Variables, req.ServerIDs)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

// listOpsApprovals is the approval queue: pending approvals unless ?status= says otherwise.
func (s *Server) listOpsApprovals(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	status := q.Get("status")
	if status == "" {
		status = approval.Pending
	}
	list, err := s.Approvals.List(r.Context(), q.Get("session_id"), status, 500)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[approval.Approval]{Items: nonNil(list)})
	return nil
}

type approvalTimeouts struct {
	L1Seconds         int `json:"l1_seconds"`
	L2Seconds         int `json:"l2_seconds"`
	UnattendedSeconds int `json:"unattended_seconds"` // approvals of standing-order runs (escalations); rejected at the end
}

func (s *Server) getApprovalTimeouts(w http.ResponseWriter, r *http.Request) error {
	t, err := s.Approvals.Timeouts(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, approvalTimeouts{L1Seconds: int(t.L1.Seconds()), L2Seconds: int(t.L2.Seconds()), UnattendedSeconds: int(t.Unattended.Seconds())})
	return nil
}

func (s *Server) putApprovalTimeouts(w http.ResponseWriter, r *http.Request) error {
	var req approvalTimeouts
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	if err := s.Approvals.SetTimeouts(r.Context(), approval.Timeouts{L1: sec(req.L1Seconds), L2: sec(req.L2Seconds), Unattended: sec(req.UnattendedSeconds)}); err != nil {
		return err
	}
	return s.getApprovalTimeouts(w, r)
}
