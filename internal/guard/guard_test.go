package guard_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/it0/it0/internal/guard"
	opsconfig "github.com/it0/it0/ops-config"
)

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want guard.Level
		err  bool
	}{
		{"L0", guard.L0, false}, {"l3", guard.L3, false}, {"2", guard.L2, false}, {" L1 ", guard.L1, false},
		{"L4", 0, true}, {"", 0, true}, {"high", 0, true}, {"-1", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := guard.ParseLevel(tc.in)
			if tc.err {
				if !errors.Is(err, guard.ErrBadLevel) {
					t.Fatalf("ParseLevel(%q) err = %v, want ErrBadLevel", tc.in, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseLevel(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if got.String() != "L"+string(rune('0'+got)) {
				t.Fatalf("String() = %q", got.String())
			}
		})
	}
}

// TestVerdictExplains ensures the verdict names the deciding sub-command and
// rule, and serialises with the documented JSON names.
func TestVerdictExplains(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	v := c.Classify(`uptime; ssh db1 'psql -c "DROP DATABASE x"'`)
	if v.Level != guard.L3 {
		t.Fatalf("level = %s, want L3", v.Level)
	}
	if !strings.Contains(v.Reason, "DROP DATABASE x") || !strings.Contains(v.Reason, "sql-drop-database") {
		t.Errorf("reason %q does not name the sub-command and rule", v.Reason)
	}
	if !slices.Equal(v.Hosts, []string{"db1"}) {
		t.Errorf("hosts = %v, want [db1]", v.Hosts)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["level"] != float64(3) || m["reason"] == "" || m["hosts"] == nil {
		t.Errorf("json = %s", b)
	}
	match := m["matches"].([]any)[0].(map[string]any)
	for _, k := range []string{"command", "rule", "level", "reason"} {
		if _, ok := match[k]; !ok {
			t.Errorf("match json lacks %q: %v", k, match)
		}
	}
	if b, _ := json.Marshal(c.Classify("ls")); strings.Contains(string(b), "hosts") {
		t.Errorf("hosts must be omitted when empty: %s", b)
	}
}

func TestHosts(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{"ssh deploy@web1 uptime", []string{"web1"}},
		{"ssh -p 2222 -i key web2", []string{"web2"}},
		{"scp a.txt web1:/tmp/ && scp db1:/x .", []string{"web1", "db1"}},
		{"rsync -av ./dist/ deploy@web3:/srv/", []string{"web3"}},
		{"timeout 5 ssh web1 'ssh web2 uptime'", []string{"web1", "web2"}},
		{"kubectl get pods", nil},
		{"cp a:b c", nil},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			t.Parallel()
			if got := c.Classify(tc.cmd).Hosts; !slices.Equal(got, tc.want) {
				t.Errorf("hosts = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestProtectedPath(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	for _, tc := range []struct {
		path string
		want guard.Level
	}{
		{"/etc/nginx/nginx.conf", guard.L2},
		{"/etc/passwd", guard.L3},
		{"/etc/../etc/shadow", guard.L3},
		{"/boot/grub/grub.cfg", guard.L3},
		{"/dev/sda", guard.L3},
		{"/dev/null", guard.L0},
		{"/root/.ssh/authorized_keys", guard.L2},
		{"/home/agent/.ssh/config", guard.L2},
		{"~/.ssh/id_ed25519", guard.L2},
		{"/srv/agent/notes.md", guard.L0},
		{"/tmp/scratch.txt", guard.L0},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			if v := c.ProtectedPath(tc.path); v.Level != tc.want {
				t.Errorf("ProtectedPath(%q) = %s (%s), want %s", tc.path, v.Level, v.Reason, tc.want)
			}
		})
	}
}

// TestConcurrent ensures one Classifier serves many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	cases := loadCorpus(t)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for _, tc := range cases[g*len(cases)/4 : (g+1)*len(cases)/4] {
				if v := c.Classify(tc.command); v.Level != tc.level {
					t.Errorf("%q = %s, want %s", tc.command, v.Level, tc.level)
				}
			}
		})
	}
	wg.Wait()
}

func TestLimits(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	t.Run("TooLong", func(t *testing.T) {
		t.Parallel()
		if v := c.Classify(strings.Repeat("ls; ", 100_000)); v.Level != guard.L3 {
			t.Errorf("huge input = %s, want L3 (refused)", v.Level)
		}
	})
	t.Run("TooDeep", func(t *testing.T) {
		t.Parallel()
		cmd := "ls"
		for range 12 {
			cmd = "bash -c " + shellQuote(cmd)
		}
		if v := c.Classify(cmd); v.Level != guard.L3 || !strings.Contains(v.Reason, "nested") {
			t.Errorf("deep nesting = %s (%s), want L3 too deep", v.Level, v.Reason)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		if v := c.Classify("  # just a comment"); v.Level != guard.L0 || v.Matches == nil {
			t.Errorf("empty = %+v", v)
		}
	})
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestLoadRulesErrors ensures bad rule files are rejected with the line.
func TestLoadRulesErrors(t *testing.T) {
	t.Parallel()
	const head = "version: 1\ndefaults:\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"Syntax", "version: 1\ncommands: [\n", "invalid risk rules"},
		{"UnknownField", "version: 1\nbogus: 1\n", "line 2"},
		{"BadVersion", "version: 2\n", "line 1"},
		{"BadLevel", head + minimalDefaults + "sql: {default: {level: L0, reason: r}}\nsensitive_env: {names: [], level: L2, reason: r}\ncommands:\n  - names: [ls]\n    level: L7\n    reason: r\n", "line 15"},
		{"BadRegex", head + minimalDefaults + "sql: {default: {level: L0, reason: r}}\nsensitive_env: {names: [], level: L2, reason: r}\ncommands:\n  - names: [ls]\n    level: L0\n    reason: r\n    rules:\n      - {regex: '(', level: L1, reason: r}\n", "line 18"},
		{"Duplicate", head + minimalDefaults + "sql: {default: {level: L0, reason: r}}\nsensitive_env: {names: [], level: L2, reason: r}\ncommands:\n  - {names: [ls], level: L0, reason: r}\n  - {names: [ls], level: L1, reason: r}\n", "line 15"},
		{"UnknownSet", head + minimalDefaults + "sql: {default: {level: L0, reason: r}}\nsensitive_env: {names: [], level: L2, reason: r}\npaths:\n  - {globs: ['@nope'], level: L2, reason: r}\n", "unknown set"},
		{"MissingDefault", "version: 1\ndefaults: {}\n", "unknown_command is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := guard.LoadRules([]byte(tc.yaml))
			if !errors.Is(err, guard.ErrInvalidRules) {
				t.Fatalf("err = %v, want ErrInvalidRules", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	t.Run("Shipped", func(t *testing.T) {
		t.Parallel()
		if _, err := guard.LoadRules(opsconfig.RiskPatterns); err != nil {
			t.Fatal(err)
		}
	})
}

const minimalDefaults = `  unknown_command: {level: L2, reason: r}
  dynamic_command: {level: L2, reason: r}
  parse_error: {level: L2, reason: r}
  redirect: {level: L1, reason: r}
  dynamic_redirect: {level: L2, reason: r}
  remote_code: {level: L3, reason: r}
  unseen_code: {level: L2, reason: r}
  too_deep: {level: L3, reason: r}
`

// TestOverride ensures a tenant can raise levels and add its own tools but
// never lower a shipped level.
func TestOverride(t *testing.T) {
	t.Parallel()
	base := mustDefault(t).Rules()
	ok := []struct {
		name, yaml, cmd string
		want            guard.Level
	}{
		{"RaiseCommandFloor", "commands:\n  - {names: [systemctl], level: L2, reason: tenant policy}\n", "systemctl restart nginx", guard.L2},
		{"FloorKeepsL3", "commands:\n  - {names: [systemctl], level: L2, reason: tenant policy}\n", "systemctl reboot", guard.L3},
		{"AddRule", "commands:\n  - names: [docker]\n    rules:\n      - {sub: [restart], level: L3, reason: never restart}\n", "docker restart web", guard.L3},
		{"AddRuleLeavesOthers", "commands:\n  - names: [docker]\n    rules:\n      - {sub: [restart], level: L3, reason: never restart}\n", "docker ps", guard.L0},
		{"NewTool", "commands:\n  - names: [mytool]\n    level: L2\n    reason: our tool\n    rules:\n      - {sub: [status], level: L0, reason: read-only}\n", "mytool status", guard.L0},
		{"NewToolDefault", "commands:\n  - names: [mytool]\n    level: L2\n    reason: our tool\n    rules:\n      - {sub: [status], level: L0, reason: read-only}\n", "mytool deploy", guard.L2},
		{"PathLayerRaises", "paths:\n  - {globs: [/srv/app/*], level: L2, reason: production app}\n", "echo x > /srv/app/config.yml", guard.L2},
		{"PathLayerCannotLower", "paths:\n  - {globs: [/etc/*], level: L0, reason: nope}\n", "echo x > /etc/motd", guard.L2},
		{"SQLRaises", "sql:\n  rules:\n    - {regex: '(?i)pg_terminate_backend', level: L2, reason: kills sessions}\n", "psql -c 'select pg_terminate_backend(42)'", guard.L2},
		{"RaiseDefault", "defaults:\n  unknown_command: {level: L3, reason: strict tenant}\n", "frobnicate", guard.L3},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := base.Override([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if v := guard.NewClassifier(r).Classify(tc.cmd); v.Level != tc.want {
				t.Errorf("%q = %s (%s), want %s", tc.cmd, v.Level, v.Reason, tc.want)
			}
		})
	}
	bad := []struct{ name, yaml, want string }{
		{"LowerDefault", "defaults:\n  unknown_command: {level: L0, reason: lax}\n", "line 2"},
		{"LowerSQLDefault", "sql:\n  default: {level: L0, reason: lax}\n", "may not lower"},
		{"ChangeExec", "commands:\n  - {names: [sudo], exec: {operands: 0}}\n", "only add level and rules"},
		{"Shadow", "commands:\n  - {names: [kubectl get], level: L0, reason: r}\n", "shadow"},
		{"ChangeSet", "sets:\n  home: [/srv]\n", "already defined"},
		{"LowerEnv", "sensitive_env: {names: [FOO], level: L0, reason: r}\n", "may not lower"},
		{"BadYAML", "commands: [\n", "invalid risk rules"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := base.Override([]byte(tc.yaml))
			if !errors.Is(err, guard.ErrInvalidRules) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidRules mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("BaseUnchanged", func(t *testing.T) {
		t.Parallel()
		if _, err := base.Override([]byte("commands:\n  - {names: [systemctl], level: L3, reason: x}\n")); err != nil {
			t.Fatal(err)
		}
		if v := guard.NewClassifier(base).Classify("systemctl restart nginx"); v.Level != guard.L1 {
			t.Errorf("base changed: %s", v.Level)
		}
	})
}

// BenchmarkClassify classifies the whole corpus; ns/op is per command.
func BenchmarkClassify(b *testing.B) {
	c := mustDefault(b)
	cases := loadCorpus(b)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		c.Classify(cases[i%len(cases)].command)
		i++
	}
}

// BenchmarkClassifyTypical is one everyday command.
func BenchmarkClassifyTypical(b *testing.B) {
	c := mustDefault(b)
	b.ReportAllocs()
	for b.Loop() {
		c.Classify("journalctl -u nginx --since '1 hour ago' | grep -i error | tail -50")
	}
}
