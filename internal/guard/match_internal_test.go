package guard

import "testing"

// FuzzGlobSet checks that a compiled glob matches what globMatch matches,
// and that a glob set's quick test never rejects a string one of its globs
// matches.
func FuzzGlobSet(f *testing.F) {
	for _, s := range [][3]string{
		{"/etc/*", "*id_rsa", "/etc/passwd"}, {"/etc/*", "*id_rsa", "/home/a/.ssh/id_rsa"}, {"*", "x", ""},
		{"/\\*", "?", "/*"}, {"a\\", "*b", "a"}, {"/dev/sd*", "/tmp/*", "/dev/sda1"}, {"$HOME/.ssh/*", "~/.ssh/*", "~/.ssh/id"},
		{"*/.kube/config", "/etc/kubernetes/*.conf", "/root/.kube/config"}, {"?", "", "x"}, {"/var/lib/*", "eth*", "/var/lib/*"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, p1, p2, s string) {
		var pats []string
		for _, p := range []string{p1, p2} {
			if p != "" {
				pats = append(pats, p)
			}
		}
		if len(pats) == 0 {
			return
		}
		gs := newGlobSet(pats)
		want := false
		for i, p := range pats {
			m := globMatch(p, s)
			if got := gs.globs[i].match(s); got != m {
				t.Fatalf("glob %q on %q: %v, globMatch %v", p, s, got, m)
			}
			want = want || m
		}
		if got := gs.match(s); got != want {
			t.Fatalf("set %q on %q: %v, want %v", pats, s, got, want)
		}
	})
}
