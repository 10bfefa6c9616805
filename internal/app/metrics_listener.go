package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// serveMetrics serves /metrics on IT0_METRICS_ADDR when it is set: the metrics describe every tenant and
// need no credentials (the Prometheus convention), so an operator can keep them off the public API
// listener, e.g. on 127.0.0.1:9090 or an internal interface. It returns the func that stops it.
func (a *App) serveMetrics() (func(context.Context) error, error) {
	if a.cfg.MetricsAddr == "" {
		return func(context.Context) error { return nil }, nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on metrics address %s: %w", a.cfg.MetricsAddr, err)
	}
	a.MetricsAddr = ln.Addr().String()
	srv := &http.Server{Handler: a.API.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	a.log.Info("metrics listening", slog.String("addr", a.MetricsAddr))
	return func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}, nil
}
