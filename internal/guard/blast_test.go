package guard_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/it0/it0/internal/guard"
)

func targets(env, role string, n int) []guard.Target {
	out := make([]guard.Target, n)
	for i := range out {
		out[i] = guard.Target{Environment: env, Role: role}
	}
	return out
}

// TestRaise ensures the shipped blast-radius rules raise by environment, fan-out size and role, say why,
// and never touch L0, L3 or a small target set.
func TestRaise(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	for _, tc := range []struct {
		name    string
		command string
		targets []guard.Target
		want    guard.Level
		rule    string
	}{
		{"OneProdWeb", "systemctl restart nginx", targets("prod", "web", 1), guard.L1, ""},
		{"TenProdWeb", "systemctl restart nginx", targets("prod", "web", 10), guard.L1, ""},
		{"ElevenProdWeb", "systemctl restart nginx", targets("prod", "web", 11), guard.L2, "prod-fanout"},
		{"ElevenDevWeb", "systemctl restart nginx", targets("dev", "web", 11), guard.L1, ""},
		{"FiftyOneDev", "systemctl restart nginx", targets("dev", "worker", 51), guard.L2, "fleet-fanout"},
		{"ProdDB", "systemctl restart postgresql", targets("prod", "db", 1), guard.L2, "critical-role"},
		{"StagingDB", "systemctl restart postgresql", targets("staging", "db", 1), guard.L1, ""},
		{"ReadOnlyEverywhere", "df -h", targets("prod", "db", 500), guard.L0, ""},
		{"L3StaysL3", "rm -rf /", targets("prod", "web", 500), guard.L3, ""},
		{"L2StaysL2", "systemctl stop nginx", targets("prod", "web", 500), guard.L2, ""},
		{"CaseInsensitive", "systemctl restart nginx", targets("PROD", "web", 11), guard.L2, "prod-fanout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := c.Classify(tc.command)
			v := c.Raise(base, tc.targets)
			if v.Level != tc.want {
				t.Fatalf("level = %s, want %s (%s)", v.Level, tc.want, v.Reason)
			}
			if tc.rule == "" {
				if v.Raised != "" || v.Reason != base.Reason {
					t.Errorf("not raised, but Raised = %q, Reason = %q", v.Raised, v.Reason)
				}
				return
			}
			if !strings.Contains(v.Raised, tc.rule) || !strings.HasPrefix(v.Reason, v.Raised) || !strings.Contains(v.Reason, base.Reason) {
				t.Errorf("raised verdict does not explain itself: raised %q, reason %q", v.Raised, v.Reason)
			}
		})
	}
}

// TestBlastOverride ensures a tenant tightens a threshold by adding a rule, the tenant rule applies only
// to the derived rules, and bad rules are refused with the line.
func TestBlastOverride(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		r, err := c.Rules().Override([]byte("blast_radius:\n  - {id: prod-3, level: L1, environments: [prod], more_than: 3, raise_to: L2, reason: \"our prod is small\"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		tc := guard.NewClassifier(r)
		v := tc.Raise(tc.Classify("systemctl restart nginx"), targets("prod", "web", 4))
		if v.Level != guard.L2 || !strings.Contains(v.Raised, "tenant:prod-3") || !strings.Contains(v.Raised, "our prod is small") {
			t.Errorf("tenant rule: %s %q", v.Level, v.Raised)
		}
		if v := c.Raise(c.Classify("systemctl restart nginx"), targets("prod", "web", 4)); v.Level != guard.L1 {
			t.Errorf("shipped rules changed: %s", v.Level)
		}
		if n := len(r.BlastRules()); n != len(c.Rules().BlastRules())+1 {
			t.Errorf("%d rules, want shipped + 1", n)
		}
	})
	for _, tc := range []struct{ name, yaml, want string }{
		{"ErrMoreThanRequired", "blast_radius:\n  - {id: x, level: L1, raise_to: L2, reason: r}\n", "more_than is required"},
		{"ErrNotARaise", "blast_radius:\n  - {id: x, level: L2, more_than: 1, raise_to: L1, reason: r}\n", "must be above level"},
		{"ErrIDRequired", "blast_radius:\n  - {level: L1, more_than: 1, raise_to: L2, reason: r}\n", "id is required"},
		{"ErrBadLevel", "blast_radius:\n  - {id: x, level: L9, more_than: 1, raise_to: L2, reason: r}\n", "bad risk level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Rules().Override([]byte(tc.yaml))
			if !errors.Is(err, guard.ErrInvalidRules) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "line 2") {
				t.Errorf("err = %v, want ErrInvalidRules naming line 2 and %q", err, tc.want)
			}
		})
	}
}

// TestSecretVerdict ensures reads of credential material are flagged Secret (for redaction), other
// commands are not, and a tenant may add secrets but not at L0.
func TestSecretVerdict(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	for cmd, want := range map[string]bool{
		"cat /etc/shadow": true,
		"head -c 65536 -- '/var/log/../../etc/shadow'": true,
		"sudo grep root /etc/gshadow":                  true,
		"cat ~/.ssh/id_ed25519":                        true,
		"cat ~/.ssh/id_ed25519.pub":                    false,
		"uptime; cat /proc/1/environ":                  true,
		"df -h":                                        false,
		"cat /etc/hostname":                            false,
	} {
		if v := c.Classify(cmd); v.Secret != want || (want && v.Level < guard.L1) {
			t.Errorf("%q: secret %v level %s, want secret %v (at least L1)", cmd, v.Secret, v.Level, want)
		}
	}
	r, err := c.Rules().Override([]byte("secrets:\n  - {id: app, globs: [/srv/app/secrets.yml], level: L2, reason: app secrets}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v := guard.NewClassifier(r).Classify("cat /srv/app/secrets.yml"); !v.Secret || v.Level != guard.L2 {
		t.Errorf("tenant secret: %+v", v)
	}
	if _, err := c.Rules().Override([]byte("secrets:\n  - {id: app, globs: [/x], level: L0, reason: r}\n")); !errors.Is(err, guard.ErrInvalidRules) {
		t.Errorf("an L0 secret was accepted: %v", err)
	}
}

func TestParseTargets(t *testing.T) {
	t.Parallel()
	got, err := guard.ParseTargets("prod:web=2, dev")
	if err != nil || len(got) != 3 || got[0] != (guard.Target{Environment: "prod", Role: "web"}) || got[2] != (guard.Target{Environment: "dev"}) {
		t.Fatalf("ParseTargets = %v, %v", got, err)
	}
	for _, bad := range []string{"", "prod=0", "prod=x", ":web", "prod=100001"} {
		if _, err := guard.ParseTargets(bad); !errors.Is(err, guard.ErrBadTargets) {
			t.Errorf("ParseTargets(%q) err = %v, want ErrBadTargets", bad, err)
		}
	}
}

// TestGlobOperands ensures a glob operand is judged as every path it may expand to, with shell semantics
// ("*" stays within one directory).
func TestGlobOperands(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	for cmd, want := range map[string]guard.Level{
		"rm /etc/*":            guard.L3, // /etc/passwd
		"rm /etc/p*":           guard.L3,
		"rm /etc/x*":           guard.L2, // no critical file starts with x: a system file
		"rm /etc/ssh*":         guard.L2, // /etc/ssh itself (a directory: rm fails), not the files in it
		"cat /root/.ssh/*":     guard.L1,
		"cat /root/.ssh/*.pub": guard.L0,
		"cat /proc/*/environ":  guard.L1,
		"cat /proc/*/status":   guard.L0,
		"rm -f /tmp/*.log":     guard.L1,
	} {
		if v := c.Classify(cmd); v.Level != want {
			t.Errorf("%q = %s, want %s (%s)", cmd, v.Level, want, v.Reason)
		}
	}
}
