package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/it0/it0/internal/bus/bustest"
)

// TestSplitReadyNamesMissingTargets starts the processes of a split one by one on PostgreSQL and Redis: an
// api process alone is ready (the edge stays up) but /readyz names every target no live process runs, and
// it0_targets_live counts them; a target disappears from the list when a process running it starts, and
// comes back when that process stops.
func TestSplitReadyNamesMissingTargets(t *testing.T) {
	t.Parallel()
	rs := bustest.StartRedis(t)
	env := backendEnv(t, "postgres", "IT0_BOOTSTRAP_ADMIN_PASSWORD=first-password", "IT0_LOG_LEVEL=info", "IT0_REDIS_URL="+rs.URL())
	d := &deployment{env: env, procs: map[string]*child{}}
	d.logOnFailure(t)
	d.api = startServe(t, env, "--data-dir", t.TempDir(), "--target", "api")
	d.procs["api"] = d.api

	// Ensure the api process alone is ready, with the targets check degraded and a warning per target.
	missing := readyWarnings(t, d.api)
	if want := []string{"agent", "ops", "monitor", "comm", "voice"}; !sameTargets(missing, want) {
		t.Fatalf("api alone: missing targets %v, want %v", missing, want)
	}
	if got := liveGauge(t, d.api); got["api"] != 1 || got["agent"] != 0 {
		t.Errorf("api alone: it0_targets_live %v", got)
	}

	// Ensure a started agent process leaves the list, and its own /readyz names what it needs.
	d.agent = startServe(t, env, "--data-dir", t.TempDir(), "--target", "agent")
	d.procs["agent"] = d.agent
	if missing := readyWarnings(t, d.api); !sameTargets(missing, []string{"ops", "monitor", "comm", "voice"}) {
		t.Fatalf("api with an agent process: missing targets %v", missing)
	}
	if got := liveGauge(t, d.api); got["agent"] != 1 {
		t.Errorf("api with an agent process: it0_targets_live %v", got)
	}
	if missing := readyWarnings(t, d.agent); !sameTargets(missing, []string{"ops", "comm"}) {
		t.Errorf("agent process: missing targets %v, want ops and comm", missing)
	}

	// Ensure a stopped agent process is missing again (a process leaves the registry when it stops).
	d.agent.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.agent.cmd.Wait(); err != nil {
		t.Fatalf("agent process after SIGTERM: %v", err)
	}
	delete(d.procs, "agent")
	if missing := readyWarnings(t, d.api); !sameTargets(missing, []string{"agent", "ops", "monitor", "comm", "voice"}) {
		t.Fatalf("api after the agent process stopped: missing targets %v", missing)
	}
}

var missingTargetRE = regexp.MustCompile(`^no live process runs the (\w+) target: .+; start one with -target=(\w+)$`)

// readyWarnings checks that process c is ready and returns the targets its /readyz names as missing. A
// warning about a target must say what stops and how to fix it.
func readyWarnings(t *testing.T, c *child) []string {
	t.Helper()
	st, m := c.call(t, "GET", "/readyz", "", nil)
	if st != 200 || m["ready"] != true {
		t.Fatalf("/readyz: %d %v", st, m)
	}
	list, _ := m["warnings"].([]any)
	var targets []string
	for _, w := range list {
		sm := missingTargetRE.FindStringSubmatch(fmt.Sprint(w))
		if sm == nil || sm[1] != sm[2] {
			t.Fatalf("/readyz warning %q does not name a missing target and its fix", w)
		}
		targets = append(targets, sm[1])
	}
	checks, _ := m["checks"].(map[string]any)
	if want := map[bool]string{true: "degraded", false: "ok"}[len(targets) > 0]; checks["targets"] != want {
		t.Errorf("/readyz checks.targets = %v with warnings %v", checks["targets"], targets)
	}
	return targets
}

// sameTargets reports whether got lists exactly want, in any order.
func sameTargets(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !strings.Contains(","+strings.Join(got, ",")+",", ","+w+",") {
			return false
		}
	}
	return true
}

var liveGaugeRE = regexp.MustCompile(`(?m)^it0_targets_live\{target="(\w+)"\} (\d+)$`)

// liveGauge reads it0_targets_live from process c's /metrics.
func liveGauge(t *testing.T, c *child) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + c.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	out := map[string]int{}
	for _, m := range liveGaugeRE.FindAllStringSubmatch(body, -1) {
		var n int
		fmt.Sscan(m[2], &n)
		out[m[1]] = n
	}
	if len(out) != 6 {
		t.Fatalf("it0_targets_live has %d targets: %v", len(out), out)
	}
	return out
}
