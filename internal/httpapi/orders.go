package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/ops"
)

func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) error {
	var o ops.StandingOrder
	if err := decode(w, r, &o); err != nil {
		return err
	}
	o.ID, o.TenantID = "", ""
	if err := s.Orders.Create(r.Context(), &o, ""); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, o)
	return nil
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) error {
	list, err := s.Orders.List(r.Context(), r.URL.Query().Get("status"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[ops.StandingOrder]{Items: nonNil(list)})
	return nil
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) error {
	o, err := s.Orders.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// patchOrder applies a JSON merge patch; unknown fields are refused like everywhere else.
func (s *Server) patchOrder(w http.ResponseWriter, r *http.Request) error {
	raw, err := readBody(w, r)
	if err != nil {
		return err
	}
	var check ops.StandingOrder
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&check); err != nil {
		return decodeError(err)
	}
	o, err := s.Orders.Update(r.Context(), r.PathValue("id"), raw, "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

func (s *Server) setOrderStatus(status string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		o, err := s.Orders.SetStatus(r.Context(), r.PathValue("id"), status)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, o)
		return nil
	}
}

func (s *Server) runOrder(w http.ResponseWriter, r *http.Request) error {
	e, err := s.Orders.Trigger(r.Context(), r.PathValue("id"), "manual", json.RawMessage(`{"by":"api"}`))
	if err != nil {
		return err
	}
	if e.Status == ops.ExecSkipped {
		return &errs.Error{Code: errs.Conflict, Message: "a run of this order is still going; this one was recorded as skipped",
			Hint: "see GET /api/v1/ops/standing-orders/" + e.OrderID + "/executions"}
	}
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (s *Server) orderExecutions(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	list, err := s.Orders.Executions(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse[ops.Execution]{Items: nonNil(list)})
	return nil
}

type eventRequest struct {
	EventType string          `json:"event_type"`
	ServerID  string          `json:"server_id,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// postEvent delivers an event (from CI, a deploy tool, or monitoring) to event-triggered standing orders.
func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) error {
	var req eventRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	started, err := s.Orders.HandleEvent(r.Context(), req.EventType, req.ServerID, req.Data)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"executions": nonNil(started)})
	return nil
}

type metricRequest struct {
	ServerID   string    `json:"server_id"`
	MetricType string    `json:"metric_type"`
	Value      float64   `json:"value"`
	At         time.Time `json:"at,omitempty"`
}

// postMetric feeds a metric sample to threshold-triggered standing orders.
func (s *Server) postMetric(w http.ResponseWriter, r *http.Request) error {
	var req metricRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.ServerID == "" || !slices.Contains(monitor.MetricTypes, req.MetricType) {
		return errs.Invalidf("metric_type", "server_id and a metric_type (one of %v) are required", monitor.MetricTypes)
	}
	if req.At.IsZero() {
		req.At = time.Now().UTC()
	}
	started, err := s.Orders.ObserveMetric(r.Context(), req.ServerID, req.MetricType, req.Value, req.At)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"executions": nonNil(started)})
	return nil
}

func (s *Server) getReportSettings(w http.ResponseWriter, r *http.Request) error {
	rs, err := s.Orders.Reports(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rs)
	return nil
}

func (s *Server) putReportSettings(w http.ResponseWriter, r *http.Request) error {
	var req ops.ReportSettings
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.Orders.SetReportSettings(r.Context(), req); err != nil {
		return err
	}
	return s.getReportSettings(w, r)
}
