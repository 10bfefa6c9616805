package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
)

// EngineInfo describes an engine for GET /engines.
type EngineInfo struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
	Active  bool   `json:"active"`
	Allowed bool   `json:"allowed"`
	// Note says why the active engine is not the configured default, when it is not.
	Note string `json:"note,omitempty"`
}

// Engines lists every engine with its health, and which one the tenant in ctx uses.
func (s *Service) Engines(ctx context.Context) ([]EngineInfo, error) {
	active, t, note, err := s.activeEngine(ctx)
	if err != nil {
		return nil, err
	}
	var out []EngineInfo
	for _, name := range engineOrder {
		info := EngineInfo{Name: name, Active: name == active, Allowed: contains(t.AllowedEngines, name)}
		if info.Active {
			info.Note = note
		}
		if _, ok := s.engines[name]; !ok {
			info.Error = "not built into this process"
		} else if err := s.engineHealth(ctx, name); err != nil {
			info.Error = err.Error()
		} else {
			info.Healthy = true
		}
		out = append(out, info)
	}
	return out, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

const engineSetting = "active_engine"

// activeEngine returns the engine new sessions of the tenant in ctx use: its choice, else the default
// (or, while that cannot run, another one: note says which and why).
func (s *Service) activeEngine(ctx context.Context) (name string, t *auth.Tenant, note string, err error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return "", nil, "", err
	}
	t, err = s.tenants.Tenant(ctx, tid)
	if err != nil {
		return "", nil, "", err
	}
	name, err = s.store.SettingGet(ctx, engineSetting)
	if err != nil {
		return "", nil, "", err
	}
	if name == "" {
		name, note = s.defaultEngine(ctx, t)
	}
	return name, t, note, nil
}

// SetEngine switches the tenant's engine at run time (new sessions use it).
func (s *Service) SetEngine(ctx context.Context, name string) error {
	old, t, _, err := s.activeEngine(ctx)
	if err != nil {
		return err
	}
	if _, ok := s.engines[name]; !ok && name != EngineClaudeCode && name != EngineClaudeAPI && name != EngineOpenAI {
		return errs.Invalidf("engine", "engine %q is not one of %s, %s, %s", name, EngineClaudeCode, EngineClaudeAPI, EngineOpenAI)
	}
	if !contains(t.AllowedEngines, name) {
		return errs.New(errs.Forbidden, "engine %s is not allowed for this tenant (allowed: %s)", name, strings.Join(t.AllowedEngines, ", "))
	}
	if err := s.store.SettingSet(ctx, engineSetting, name); err != nil {
		return err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "agent.engine_switched", ResourceType: "tenant", ResourceID: t.ID,
		Description: fmt.Sprintf("engine %s → %s", old, name), Detail: map[string]string{"before": old, "after": name}})
	return err
}

// engine returns a usable engine by name, or an error naming what to configure.
func (s *Service) engine(ctx context.Context, name string) (Engine, error) {
	e, ok := s.engines[name]
	if !ok {
		return nil, errs.New(errs.Unavailable, "engine %s is not available in this process", name)
	}
	if err := s.engineHealth(ctx, name); err != nil {
		return nil, (&errs.Error{Code: errs.Unavailable, Message: "engine " + name + " is unavailable: " + err.Error()}).
			WithHint("configure it (see .env.example) or switch engines with POST /api/v1/agent/engine")
	}
	return e, nil
}
