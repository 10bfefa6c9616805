package sqlstmt

import (
	"strconv"
	"strings"
	"testing"
)

func TestRewrite(t *testing.T) {
	t.Parallel()
	pg := Rewriter{Prefix: `"it0_t_a".`, Dollar: true}
	jobs := Rewriter{Prefix: `"it0_jobs".`, Tables: []string{"jobs"}, Dollar: true}
	lite := Rewriter{}
	for _, tc := range []struct {
		name string
		rw   Rewriter
		in   string
		want string
	}{
		{"Placeholders", pg, `SELECT a FROM ~t WHERE b = ? AND c IN (?, ?)`, `SELECT a FROM "it0_t_a".t WHERE b = $1 AND c IN ($2, $3)`},
		{"SQLiteDropsMarkers", lite, `SELECT a FROM ~t JOIN ~u ON t.id=u.id WHERE b = ?`, `SELECT a FROM t JOIN u ON t.id=u.id WHERE b = ?`},
		{"LiteralsUntouched", pg, `SELECT '~t ? '' ?' FROM ~t WHERE x = ?`, `SELECT '~t ? '' ?' FROM "it0_t_a".t WHERE x = $1`},
		{"EscapeStringBackslash", pg, `SELECT E'it\'s ~t ?' , ?`, `SELECT E'it\'s ~t ?' , $1`},
		{"QuotedIdentifier", pg, `SELECT "a?~b" FROM ~t WHERE "x" = ?`, `SELECT "a?~b" FROM "it0_t_a".t WHERE "x" = $1`},
		{"RegexOperators", pg, `SELECT 1 FROM ~t WHERE name ~ ? AND name ~* ? AND name !~ ? AND a~b`, `SELECT 1 FROM "it0_t_a".t WHERE name ~ $1 AND name ~* $2 AND name !~ $3 AND a~b`},
		{"RegexAfterParen", pg, `SELECT 1 FROM ~t WHERE lower(name) ~'x'`, `SELECT 1 FROM "it0_t_a".t WHERE lower(name) ~'x'`},
		{"JSONOperators", pg, `SELECT 1 FROM ~t WHERE data ?? 'k' AND data ??| ? AND data ??& ?`, `SELECT 1 FROM "it0_t_a".t WHERE data ? 'k' AND data ?| $1 AND data ?& $2`},
		{"Comments", pg, "SELECT 1 -- what ~t?\nFROM ~t /* ~u ? */ WHERE a = ?", "SELECT 1 -- what ~t?\nFROM \"it0_t_a\".t /* ~u ? */ WHERE a = $1"},
		{"DollarQuoted", pg, `DO $body$ SELECT '?' ~x $body$; SELECT ?`, `DO $body$ SELECT '?' ~x $body$; SELECT $1`},
		{"BareTable", jobs, "SELECT id FROM jobs WHERE state = ? AND jobs.kind = ?\nUPDATE jobs SET x = ? RETURNING id", "SELECT id FROM \"it0_jobs\".jobs WHERE state = $1 AND \"it0_jobs\".jobs.kind = $2\nUPDATE \"it0_jobs\".jobs SET x = $3 RETURNING id"},
		{"BareTableNotInWords", jobs, `CREATE INDEX jobs_due ON jobs (run_at) WHERE kind = 'jobs'`, `CREATE INDEX jobs_due ON "it0_jobs".jobs (run_at) WHERE kind = 'jobs'`},
		{"Unterminated", pg, `SELECT '?`, `SELECT '?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.rw.Rewrite(tc.in); got != tc.want {
				t.Errorf("Rewrite(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzRewrite feeds arbitrary queries: no panic, single-quoted literals come out unchanged and in order,
// and the placeholders are numbered 1…n.
func FuzzRewrite(f *testing.F) {
	for _, s := range []string{`SELECT a FROM ~t WHERE b = ? AND c ~ 'x?'`, `data ?? 'k'`, `E'\'?'`, `$$?$$ ?`, `"?" -- ?`, "/* ? */ ?", `jobs.x = ?`, `'`, `$a`, `~`} {
		f.Add(s)
	}
	rw := Rewriter{Prefix: `"s".`, Tables: []string{"jobs"}, Dollar: true}
	f.Fuzz(func(t *testing.T, q string) {
		out := rw.Rewrite(q)
		if lite := (Rewriter{}).Rewrite(q); len(lite) > len(q) {
			t.Fatalf("SQLite rewrite grew the query: %q → %q", q, lite)
		}
		// Only simple inputs (no other kind of quoting) are checked for literals, by a scanner of its own.
		if !strings.ContainsAny(q, "\"$-/\\") && strings.Count(q, "'")%2 == 0 {
			if a, b := literals(q), literals(out); strings.Join(a, "\x00") != strings.Join(b, "\x00") {
				t.Fatalf("literals changed: %q → %q (%q vs %q)", q, out, a, b)
			}
		}
		for i := 1; ; i++ {
			p := "$" + strconv.Itoa(i)
			if !strings.Contains(out, p) {
				if strings.Contains(out, "$"+strconv.Itoa(i+1)) && !strings.Contains(q, "$") {
					t.Fatalf("placeholder %s skipped in %q", p, out)
				}
				break
			}
		}
	})
}

// literals returns the '…' literals of q in order (” is an escaped quote inside one).
func literals(q string) []string {
	var out []string
	for i := 0; i < len(q); i++ {
		if q[i] != '\'' {
			continue
		}
		j := i + 1
		for j < len(q) {
			if q[j] == '\'' {
				if j+1 < len(q) && q[j+1] == '\'' {
					j += 2
					continue
				}
				break
			}
			j++
		}
		out = append(out, q[i:min(j+1, len(q))])
		i = j
	}
	return out
}

func BenchmarkRewrite(b *testing.B) {
	q := `UPDATE ~approval_requests SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND tenant_id = ? AND status = 'pending'`
	for _, rw := range []Rewriter{{}, {Prefix: `"it0_t_acme".`, Dollar: true}} {
		b.Run(map[bool]string{false: "sqlite", true: "postgres"}[rw.Dollar], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rw.Rewrite(q)
			}
		})
	}
}
