package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/it0/it0/internal/auth"
)

// engineOrder is the order engines are listed in, and tried in when the default one cannot run.
var engineOrder = []string{EngineClaudeCode, EngineClaudeAPI, EngineOpenAI}

// defaultEngine returns the engine new sessions of tenant t use when the tenant chose none: the
// configured default when it can run, else the first engine that can and that t may use, with a note
// that says so (logged once each time the choice changes). With no engine able to run, the default
// stays and starting a session explains what to configure.
func (s *Service) defaultEngine(ctx context.Context, t *auth.Tenant) (name, note string) {
	def := s.cfg.DefaultEngine
	err := s.engineHealth(ctx, def)
	if err == nil && !contains(t.AllowedEngines, def) {
		err = errors.New("not allowed for this tenant")
	}
	if err == nil {
		if prev, loaded := s.fallbacks.LoadAndDelete(t.ID); loaded {
			s.log.InfoContext(ctx, "default engine available again", slog.String("tenant_id", t.ID), slog.String("engine", def),
				slog.Any("was_using", prev))
		}
		return def, ""
	}
	for _, n := range engineOrder {
		if n == def || !contains(t.AllowedEngines, n) || s.engineHealth(ctx, n) != nil {
			continue
		}
		if prev, _ := s.fallbacks.Swap(t.ID, n); prev != n {
			s.log.WarnContext(ctx, "default engine unavailable; using another", slog.String("tenant_id", t.ID),
				slog.String("default", def), slog.String("engine", n), slog.String("reason", err.Error()))
		}
		return n, fmt.Sprintf("the default engine %s is unavailable (%v); new sessions use %s until it is configured or another engine is chosen", def, err, n)
	}
	return def, ""
}

// engineHealth runs the named engine's health check, bounded to a few seconds.
func (s *Service) engineHealth(ctx context.Context, name string) error {
	e, ok := s.engines[name]
	if !ok {
		return fmt.Errorf("engine %s is not built into this process", name)
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return e.Health(hctx)
}
