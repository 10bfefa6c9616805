package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/it0/it0/internal/logging"
)

// requestInfo is what the inner handlers learn about a request that the access log, written by the outer
// handler, needs: the tenant the request acted in.
type requestInfo struct {
	tenantID string
}

type requestInfoKey struct{}

// probeRoutes are polled by load balancers and scrapers; their lines would drown the rest at info.
var probeRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// accessLog writes one line per request: info, debug for probes, error for 5xx.
func (s *Server) accessLog(ctx context.Context, r *http.Request, info *requestInfo, route string, status int, elapsed time.Duration) {
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case probeRoutes[route]:
		level = slog.LevelDebug
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("method", r.Method), slog.String("route", route), slog.Int("status", status),
		slog.Int64("duration_us", elapsed.Microseconds()), slog.String("client_ip", s.clientIP(r))}
	if info.tenantID != "" {
		attrs = append(attrs, slog.String(logging.KeyTenantID, info.tenantID))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}
