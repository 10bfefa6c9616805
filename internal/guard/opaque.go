package guard

import (
	"regexp"
	"strings"
)

// execCall finds calls that run a command in languages the guard cannot
// parse (python, perl, ruby, node, php, awk): their string arguments are
// classified as shell, so python -c 'os.system("rm -rf /")' is still L3.
var execCall = regexp.MustCompile(`(?:\bos\.system|\bos\.popen|\bos\.exec\w*|\bsubprocess\.\w+|\bcommands\.\w+|\bsystem|\bexec|\bexecSync|\bexecFile\w*|\bspawn\w*|\bpopen|\bshell_exec|\bpassthru|\bproc_open|\bRuntime\.getRuntime\(\)\.exec|\bIO\.popen|\bOpen3\.\w+)\s*\(`)

// backtick finds `cmd` and %x(cmd) in perl, ruby and php.
var backtick = regexp.MustCompile("`([^`]*)`|%x\\(([^)]*)\\)|\\bqx\\s*[({/]([^)}/]*)[)}/]")

// execStrings returns the shell commands found in exec calls in code.
func execStrings(code string) []string {
	var out []string
	for _, loc := range execCall.FindAllStringIndex(code, 8) {
		out = append(out, strings.Join(stringLiterals(balanced(code[loc[1]:])), " "))
	}
	for _, m := range backtick.FindAllStringSubmatch(code, 8) {
		out = append(out, m[1]+m[2]+m[3])
	}
	return out
}

// balanced returns s up to the parenthesis that closes an already open one.
func balanced(s string) string {
	depth := 1
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == '\\' {
				i++
			} else if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
			if depth == 0 {
				return s[:i]
			}
		}
	}
	return s
}

// stringLiterals returns the contents of the quoted strings in s.
func stringLiterals(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		q := s[i]
		if q != '\'' && q != '"' {
			continue
		}
		var b strings.Builder
		j := i + 1
		for ; j < len(s) && s[j] != q; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			b.WriteByte(s[j])
		}
		out = append(out, b.String())
		i = j
	}
	return out
}
