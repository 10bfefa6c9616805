package app

import (
	"fmt"
	"slices"
	"strings"
)

// deployTargets are the targets a split deployment runs as separate processes (DESIGN.md §1): together
// they are "all".
var deployTargets = []string{API, Agent, Ops, Monitor, Comm, Voice}

// splitTarget reports whether target runs only part of IT0, as one process of a split deployment: it
// names some of the deploy targets and not all of them (nor "all"). Other targets (single modules such
// as "bus") are tools for tests and operators, not deployments.
func splitTarget(target string) bool {
	var named []string
	for _, t := range strings.Split(target, ",") {
		switch t = strings.TrimSpace(t); {
		case t == All:
			return false
		case slices.Contains(deployTargets, t) && !slices.Contains(named, t):
			named = append(named, t)
		}
	}
	return len(named) > 0 && len(named) < len(deployTargets)
}

// checkTarget refuses a split target without the shared state its sibling processes need: with embedded
// SQLite or the in-process bus, the processes of a split would each see only their own data and events.
func checkTarget(cfg Config) error {
	if !splitTarget(cfg.Target) {
		return nil
	}
	var missing []string
	if cfg.DatabaseURL == "" {
		missing = append(missing, "IT0_DATABASE_URL (PostgreSQL)")
	}
	if cfg.RedisURL == "" {
		missing = append(missing, "IT0_REDIS_URL (Redis)")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("-target=%s runs part of IT0; the processes of a split share state only through PostgreSQL and Redis: set %s, or run -target=all",
		cfg.Target, strings.Join(missing, " and "))
}
