package inventory

import (
	"slices"
	"strings"
	"testing"
)

func TestParseImport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, format, content string
		want                  []ImportEntry
		err                   string
	}{
		{name: "SSHConfig", format: "ssh_config", content: `
# comment
User deploy
Host bastion
  HostName 10.0.0.1
  Port 2222
Host web-1 web-2
  ProxyJump bastion
  IdentityFile ~/.ssh/id_ed25519
Host db-1
  HostName=db1.internal
  User=postgres
Host *.example.com
  User ignored
Host *
  User fallback
  Port 22
`, want: []ImportEntry{
			{Name: "bastion", Host: "10.0.0.1", Port: 2222, SSHUser: "deploy"},
			{Name: "web-1", Host: "web-1", Port: 22, SSHUser: "deploy", JumpServer: "bastion", IdentityFile: "~/.ssh/id_ed25519"},
			{Name: "web-2", Host: "web-2", Port: 22, SSHUser: "deploy", JumpServer: "bastion", IdentityFile: "~/.ssh/id_ed25519"},
			{Name: "db-1", Host: "db1.internal", Port: 22, SSHUser: "deploy"},
		}},
		{name: "SSHConfigFirstValueWins", format: "ssh_config", content: "Host a\n  User one\nHost *\n  User two\n",
			want: []ImportEntry{{Name: "a", Host: "a", SSHUser: "one"}}},
		{name: "YAMLList", format: "yaml", content: "- name: a\n  host: 10.0.0.2\n  tags: [x, y]\n  jump_server: b\n",
			want: []ImportEntry{{Name: "a", Host: "10.0.0.2", Tags: []string{"x", "y"}, JumpServer: "b"}}},
		{name: "YAMLWrapped", format: "yaml", content: "servers:\n  - name: a\n    host: h\n", want: []ImportEntry{{Name: "a", Host: "h"}}},
		{name: "JSON", format: "json", content: `{"servers":[{"name":"a","host":"h","port":2200}]}`, want: []ImportEntry{{Name: "a", Host: "h", Port: 2200}}},
		{name: "ErrBadPort", format: "ssh_config", content: "Host a\n  Port ssh\n", err: "Port"},
		{name: "ErrProxyJumpList", format: "ssh_config", content: "Host a\n  ProxyJump x,y\n", err: "ProxyJump"},
		{name: "ErrMatch", format: "ssh_config", content: "Match host a\n  User b\n", err: "Match"},
		{name: "ErrFormat", format: "toml", content: "x", err: "format"},
		{name: "ErrJSON", format: "json", content: "{", err: "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseImport(tc.format, tc.content)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Name != w.Name || g.Host != w.Host || g.Port != w.Port || g.SSHUser != w.SSHUser || g.JumpServer != w.JumpServer ||
					g.IdentityFile != w.IdentityFile || !slices.Equal(g.Tags, w.Tags) {
					t.Errorf("entry %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// FuzzParseImport feeds arbitrary config text: no panic, and every entry has a name and a host.
func FuzzParseImport(f *testing.F) {
	f.Add("ssh_config", "Host a b\n  HostName h\n  ProxyJump b\nHost *\n  Port 22\n")
	f.Add("ssh_config", "Host=a\nUser=\"x\"\n")
	f.Add("yaml", "- name: a\n  host: h\n")
	f.Add("json", `[{"name":"a","host":"h"}]`)
	f.Fuzz(func(t *testing.T, format, content string) {
		entries, err := ParseImport(format, content)
		if err != nil || format != "ssh_config" {
			return
		}
		for _, e := range entries {
			if e.Name == "" || e.Host == "" || strings.ContainsAny(e.Name, "*?") {
				t.Fatalf("bad entry %+v from %q", e, content)
			}
		}
	})
}

func TestSelector(t *testing.T) {
	t.Parallel()
	s := &Server{ID: "1", Name: "web-1", Environment: "prod", Role: "web", Tags: []string{"a", "b"}}
	for _, tc := range []struct {
		sel  Selector
		want bool
	}{
		{Selector{}, false},
		{Selector{All: true}, true},
		{Selector{Environment: "prod"}, true},
		{Selector{Environment: "prod", Role: "db"}, false},
		{Selector{Tags: []string{"a", "b"}}, true},
		{Selector{Tags: []string{"a", "c"}}, false},
		{Selector{Names: []string{"web-1"}}, true},
		{Selector{ServerIDs: []string{"2"}}, false},
	} {
		if got := tc.sel.Match(s); got != tc.want {
			t.Errorf("%+v.Match = %v, want %v", tc.sel, got, tc.want)
		}
	}
}

func TestChainLimits(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{MaxJumpDepth: 2}}
	all := map[string]*Server{
		"a": {ID: "a", Name: "a"}, "b": {ID: "b", Name: "b", JumpServerID: "a"}, "c": {ID: "c", Name: "c", JumpServerID: "b"},
		"d": {ID: "d", Name: "d", JumpServerID: "c"}, "x": {ID: "x", Name: "x", JumpServerID: "y"}, "y": {ID: "y", Name: "y", JumpServerID: "x"},
		"z": {ID: "z", Name: "z", JumpServerID: "missing"},
	}
	if ch, err := s.chain(all, "c"); err != nil || len(ch) != 3 || ch[0].ID != "a" || ch[2].ID != "c" {
		t.Errorf("chain c = %v, %v", ch, err)
	}
	for id, want := range map[string]string{"d": "deeper", "x": "cycle", "z": "does not exist"} {
		if _, err := s.chain(all, id); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("chain %s: %v, want %q", id, err, want)
		}
	}
}
