package httpapi

import (
	"net/http"
	"strconv"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
)

type auditLogsResponse struct {
	Items      []audit.Entry `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

func (s *Server) auditLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := audit.Filter{ActionType: q.Get("action_type"), ActorID: q.Get("actor"), ResourceType: q.Get("resource_type"),
		ResourceID: q.Get("resource_id")}
	var err1, err2, err3 error
	f.Since, err1 = queryTime(r, "since")
	f.Until, err2 = queryTime(r, "until")
	f.Limit, err3 = queryInt(r, "limit", 100, 1, 1000)
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 1 {
			return errs.Invalidf("cursor", "cursor must be the next_cursor of a previous page")
		}
		f.BeforeSeq = n
	}
	if err := errs.Join(err1, err2, err3); err != nil {
		return err
	}
	items, err := s.Audit.List(r.Context(), f)
	if err != nil {
		return err
	}
	resp := auditLogsResponse{Items: items}
	if resp.Items == nil {
		resp.Items = []audit.Entry{}
	}
	if len(items) == f.Limit && items[len(items)-1].Seq > 1 {
		resp.NextCursor = strconv.FormatInt(items[len(items)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type verifyResponse = audit.VerifyResult

func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request) error {
	res, err := s.Audit.Verify(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) auditExport(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="audit.jsonl"`)
	return s.Audit.Export(r.Context(), w)
}
