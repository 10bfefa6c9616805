package main

import (
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// TestAlertRules checks deploy/prometheus/it0-alerts.yml with promtool (Debian's prometheus package;
// .ci/run installs it) and runs its unit tests (it0-alerts.test.yml).
func TestAlertRules(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found (apt-get install prometheus); .ci/run installs it")
		}
		t.Skip("promtool not found")
	}
	for _, args := range [][]string{{"check", "rules", "it0-alerts.yml"}, {"test", "rules", "it0-alerts.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../../deploy/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// alertRuleMetrics returns the it0_ series the alert rules read.
func alertRuleMetrics(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/prometheus/it0-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`it0_[a-z_]+[a-z]`).FindAllString(string(raw), -1)
}
