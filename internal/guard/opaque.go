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

// deleteAPI finds calls of file-destroying functions in languages the guard
// cannot parse. Group 1 is the recursive kind (a tree), group 2 the single
// file or directory kind.
var deleteAPI = regexp.MustCompile(`(?:(\bshutil\.rmtree|\bFileUtils\.(?:rm_rf|rm_r|rmtree|remove_dir|remove_entry(?:_secure)?|rm_tree)|(?:\bfs|\bfsp|\bpromises|\bfse|\))\.(?:rm|rmSync|rmdir|rmdirSync|remove|removeSync|emptyDir|emptyDirSync)|\bDeno\.remove(?:Sync)?|\brmtree|\bremove_tree)|(\bos\.(?:remove|unlink|rmdir|removedirs)|\.unlink|\.rmdir|\bFile\.(?:delete|unlink)|\bFileUtils\.(?:rm|rm_f|remove|remove_file)|\bDir\.(?:rmdir|delete|unlink)|\bfs\.(?:unlink|unlinkSync)|\bunlink))\s*(\(|\s['"]|\s+glob\b)`)

// absPath finds absolute path literals in code.
var absPath = regexp.MustCompile(`['"](/[^'"\s]*)['"]`)

// maxDeletes bounds the delete calls judged per piece of code.
const maxDeletes = 8

// deleteCalls returns the shell command each file-destroying call amounts
// to: shutil.rmtree("/etc") is rm -rf /etc, os.remove("/etc/passwd") is rm
// /etc/passwd. A call whose path the guard cannot read (a loop over
// os.listdir("/etc")) is judged on every absolute path the code names, as
// rm of everything in it.
func deleteCalls(code string) [][]word {
	var out [][]word
	for _, m := range deleteAPI.FindAllStringSubmatchIndex(code, maxDeletes) {
		flags := "-f"
		if m[2] >= 0 {
			flags = "-rf"
		}
		args := code[m[6]:]
		if args[0] == '(' {
			args = balanced(args[1:])
		} else if i := strings.IndexAny(args, ";\n"); i >= 0 {
			args = args[:i] // unlink "/x", rm_r "/y": up to the statement's end
		}
		// pathlib.Path("/etc/x").unlink(): the path comes before the call.
		if strings.HasPrefix(code[m[0]:m[1]], ".") {
			args = code[max(0, m[0]-200):m[0]] + args
		}
		// A bare literal is the target; a literal inside an expression
		// (os.path.join("/etc", f)) is a directory something in it is.
		bare := absPath.MatchString(args) && len(absPath.FindString(strings.TrimSpace(args))) == len(strings.TrimSpace(args))
		var paths []string
		for _, p := range absPath.FindAllStringSubmatch(args, 4) {
			paths = append(paths, p[1])
			if !bare {
				paths = append(paths, strings.TrimSuffix(p[1], "/")+"/*")
			}
		}
		if len(paths) == 0 {
			for _, p := range absPath.FindAllStringSubmatch(code, 4) {
				paths = append(paths, strings.TrimSuffix(p[1], "/")+"/*")
			}
		}
		for _, p := range paths {
			out = append(out, []word{{val: "rm", lit: true}, {val: flags, lit: true}, {val: "--", lit: true}, {val: p, lit: true}})
		}
	}
	return out
}
