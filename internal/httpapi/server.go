// Package httpapi is IT0's REST and WebSocket transport: routing, authentication, RBAC, errors, metrics and
// the OpenAPI document. routes.go lists the whole API surface.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/wecom"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/logging"
	"github.com/it0/it0/internal/monitor/checks"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/voice"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Pinger is what readiness checks: each dependency that must answer before the server is ready.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Warner is a readiness check that may also report degraded states which leave the process ready: /readyz
// lists them under "warnings" and shows the check as "degraded".
type Warner interface {
	Warnings(ctx context.Context) []string
}

// Deps are the services the API exposes. A nil service leaves its routes out (its module is not running
// in this process).
type Deps struct {
	Auth      *auth.Service
	Audit     *audit.Log
	Inventory *inventory.Service
	Agent     *agent.Service
	// Approvals opens, decides and lists approvals (internal/ops/approval).
	Approvals *approval.Service
	Ops       *ops.Service
	Orders    *ops.Orders
	Comm      *comm.Service
	// WeCom verifies and decrypts WeCom's callback (nil refuses it: not configured).
	WeCom *wecom.Callback
	// Monitoring is metrics and alerting (nil leaves their routes out).
	Monitoring *MonitoringDeps
	// Checks are the health checks (nil leaves their routes out).
	Checks *checks.Service
	// Voice is the voice gateway (nil leaves its routes out).
	Voice *voice.Service
	// WSOrigins are the browser origins allowed to open WebSockets (host patterns); same-origin always is.
	WSOrigins []string
	Ready     map[string]Pinger // name → check, reported by /readyz
	Registry  *prometheus.Registry
	Logger    *slog.Logger
	Version   string
	// TrustProxy makes X-Forwarded-For the client address (behind a gateway such as Kong).
	TrustProxy bool
	// Console is the built web console served at / (nil serves none).
	Console fs.FS
	// MetricsElsewhere leaves /metrics off the API listener; the caller serves MetricsHandler on its own
	// address (IT0_METRICS_ADDR), since the metrics are platform-wide and unauthenticated.
	MetricsElsewhere bool
}

// Server is the HTTP API.
type Server struct {
	Deps
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []route
	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// New builds the server and its routes.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &Server{Deps: d, log: d.Logger.With(slog.String("component", "http")), mux: http.NewServeMux()}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_http_requests_total",
		Help: "HTTP requests by route, method and status."}, []string{"route", "method", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "it0_http_request_duration_seconds",
		Help: "HTTP request latency by route and method.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}},
		[]string{"route", "method"})
	d.Registry.MustRegister(s.reqs, s.latency)
	s.routes = s.apiRoutes()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": d.Version})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	if !d.MetricsElsewhere {
		s.mux.Handle("GET /metrics", s.MetricsHandler())
	} else { // a 404 that says where they went, rather than the console's page
		s.mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, errs.New(errs.NotFound, "metrics are served on their own address (IT0_METRICS_ADDR)"))
		})
	}
	s.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.OpenAPI())
	})
	if d.Console != nil {
		if h, err := s.consoleHandler(d.Console); err != nil {
			s.log.Error("console not served", slog.String("error", err.Error()))
		} else {
			// "/" rather than "GET /": a method-qualified catch-all would conflict with the /api/ fallback.
			s.mux.Handle("/", consoleMethods(h))
		}
	}
	s.mux.HandleFunc(apiFallbackPattern, s.apiFallback)
	return s
}

// MetricsHandler serves the Prometheus metrics (GET /metrics).
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	return mux
}

// Handler is the root handler: request ids, panic recovery and metrics around the mux.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		info := &requestInfo{}
		ctx := context.WithValue(logging.WithRequestID(r.Context(), id), requestInfoKey{}, info)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(ctx)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(ctx, "panic in handler", slog.Any("panic", p))
				if !rec.wrote {
					s.writeError(rec, r, errs.New(errs.Internal, "internal error"))
				}
			}
			route := routeLabel(r.Pattern)
			elapsed := time.Since(start)
			s.reqs.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
			s.latency.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
			s.accessLog(ctx, r, info, route, rec.status, elapsed)
		}()
		s.mux.ServeHTTP(rec, r)
	})
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

func newRequestID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func requestID(ctx context.Context) string { return logging.RequestID(ctx) }

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer (deadlines, hijacking for WebSockets).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// wrap turns a route into a handler: authentication, tenant selection, permission check, error mapping.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		actor := audit.Actor{Type: audit.ActorSystem, IP: s.clientIP(r), RequestID: requestID(ctx)}
		if err := checkParams(r, rt.path); err != nil {
			s.writeError(w, r, err)
			return
		}
		if !rt.public {
			p, err := s.authenticate(r)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			tid := p.TenantID
			if h := r.Header.Get("X-Tenant-Id"); h != "" && h != p.TenantID {
				if !p.PlatformAdmin {
					s.writeError(w, r, errs.New(errs.Forbidden, "X-Tenant-Id is honoured only for platform admins"))
					return
				}
				t, err := s.Auth.Tenant(ctx, h)
				if err != nil {
					s.writeError(w, r, err)
					return
				}
				if t.Status != auth.TenantActive {
					s.writeError(w, r, auth.ErrTenantSuspended)
					return
				}
				tid = h
			}
			if rt.perm != "" && !p.Can(rt.perm) {
				s.writeError(w, r, errs.New(errs.Forbidden, "your role (%s) lacks permission %s", p.Role, rt.perm))
				return
			}
			actor.Type, actor.ID = audit.ActorUser, p.UserID
			if p.APIKeyID != "" {
				actor.Type, actor.ID = audit.ActorAPIKey, p.APIKeyID
			}
			ctx = tenant.WithID(auth.WithPrincipal(ctx, p), tid)
			if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
				info.tenantID = tid
			}
		}
		ctx = audit.WithActor(ctx, actor)
		if err := rt.handler(w, r.WithContext(ctx)); err != nil {
			s.writeError(w, r, err)
		}
	})
}

var errNoCredentials = errs.New(errs.Unauthorized, "authentication required").
	WithHint("send Authorization: Bearer <token>; get a token from POST /api/v1/auth/login")

func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		// Browsers cannot set headers on a WebSocket upgrade; those routes accept ?token=.
		tok = r.URL.Query().Get("token")
		if tok == "" || !strings.HasPrefix(r.URL.Path, "/ws/") {
			return auth.Principal{}, errNoCredentials
		}
	}
	return s.Auth.Authenticate(r.Context(), strings.TrimSpace(tok))
}

func (s *Server) clientIP(r *http.Request) string {
	if s.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			return strings.TrimSpace(strings.Split(xff, ",")[0])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, checks := http.StatusOK, map[string]string{}
	var warnings []string
	for name, p := range s.Ready {
		if err := p.Ping(ctx); err != nil {
			status, checks[name] = http.StatusServiceUnavailable, "error: "+err.Error()
			continue
		}
		checks[name] = "ok"
		if wr, ok := p.(Warner); ok {
			if list := wr.Warnings(ctx); len(list) > 0 {
				checks[name] = "degraded"
				warnings = append(warnings, list...)
			}
		}
	}
	body := map[string]any{"ready": status == http.StatusOK, "checks": checks}
	if len(warnings) > 0 {
		slices.Sort(warnings)
		body["warnings"] = warnings
	}
	writeJSON(w, status, body)
}
