package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/it0/it0/internal/errs"
)

// statusOf is the one map from application error codes to HTTP statuses.
var statusOf = map[errs.Code]int{
	errs.Invalid:       http.StatusBadRequest,
	errs.NotFound:      http.StatusNotFound,
	errs.Conflict:      http.StatusConflict,
	errs.Unauthorized:  http.StatusUnauthorized,
	errs.Forbidden:     http.StatusForbidden,
	errs.QuotaExceeded: http.StatusForbidden,
	errs.RateLimited:   http.StatusTooManyRequests,
	errs.TooLarge:      http.StatusRequestEntityTooLarge,
	errs.Unavailable:   http.StatusServiceUnavailable,
	errs.Internal:      http.StatusInternalServerError,
}

// errorBody is the JSON error shape of every endpoint.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	Field   string `json:"field,omitempty"`
}

// writeError answers with err's status and body. Errors that are not application errors are logged and
// shown only as "internal error": their text may carry details (SQL, paths) a client must not see.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *errs.Error
	if !errors.As(err, &e) {
		s.log.ErrorContext(r.Context(), "request failed", slog.String("error", err.Error()))
		e = &errs.Error{Code: errs.Internal, Message: "internal error",
			Hint: "the server logged the cause under request id " + requestID(r.Context())}
	}
	status := statusOf[e.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())))
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: string(e.Code), Message: e.Message, Hint: e.Hint, Field: e.Field}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// probeMethods are the methods tried to tell "no such path" (404) from "not with this method" (405).
var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// apiFallback answers every request under /api/ that no route takes, in the JSON error envelope: 405 with
// an Allow header when the path exists for other methods, 404 otherwise. (ServeMux's own answers are
// plain text.)
func (s *Server) apiFallback(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range probeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != apiFallbackPattern {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{Code: "method_not_allowed",
			Message: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path), Hint: "use " + strings.Join(allow, " or ")}})
		return
	}
	s.writeError(w, r, errs.New(errs.NotFound, "no API endpoint %s %s", r.Method, r.URL.Path).
		WithHint("the endpoints are listed in GET /api/v1/openapi.json"))
}

const apiFallbackPattern = "/api/"
