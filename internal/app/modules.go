package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// InitFunc builds a module. It returns a stop func (nil when the module holds nothing to release).
type InitFunc func(ctx context.Context) (stop func(context.Context) error, err error)

// Manager is the module graph: which modules exist, what each needs, and in what order to start and stop
// them. Composite targets (like "all") are modules with a nil init.
type Manager struct {
	inits map[string]InitFunc
	deps  map[string][]string
}

// NewManager returns an empty graph.
func NewManager() *Manager {
	return &Manager{inits: map[string]InitFunc{}, deps: map[string][]string{}}
}

// Register adds module name with its init (nil for a composite target) and the modules it needs.
func (m *Manager) Register(name string, init InitFunc, deps ...string) {
	m.inits[name] = init
	m.deps[name] = deps
}

// Resolve returns every module that targets need, dependencies first, each once. Unknown names and
// cycles are errors.
func (m *Manager) Resolve(targets []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		if _, ok := m.deps[name]; !ok {
			return fmt.Errorf("unknown module %q (known: %s)", name, strings.Join(m.Names(), ", "))
		}
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(path, name), " → "))
		case 2:
			return nil
		}
		state[name] = 1
		for _, d := range m.deps[name] {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, t := range targets {
		if err := visit(strings.TrimSpace(t), nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Names lists every module, sorted.
func (m *Manager) Names() []string {
	names := make([]string, 0, len(m.deps))
	for n := range m.deps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Deps returns the direct dependencies of name.
func (m *Manager) Deps(name string) []string { return slices.Clone(m.deps[name]) }

// Start initialises the modules targets need, in dependency order. On failure it stops what it started.
// The returned stop func stops dependants before their dependencies.
func (m *Manager) Start(ctx context.Context, targets []string) (func(context.Context) error, error) {
	order, err := m.Resolve(targets)
	if err != nil {
		return nil, err
	}
	var stops []func(context.Context) error
	stopAll := func(ctx context.Context) error {
		var list []error
		for i := len(stops) - 1; i >= 0; i-- {
			list = append(list, stops[i](ctx))
		}
		return errors.Join(list...)
	}
	for _, name := range order {
		init := m.inits[name]
		if init == nil {
			continue
		}
		stop, err := init(ctx)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("start module %s: %w", name, err), stopAll(context.WithoutCancel(ctx)))
		}
		if stop != nil {
			stops = append(stops, stop)
		}
	}
	return stopAll, nil
}
