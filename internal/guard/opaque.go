package guard

import (
	"regexp"
	"strings"
)

// execCalls finds calls that run a command in languages the guard cannot
// parse (python, perl, ruby, node, php, awk): their string arguments are
// classified as shell, so python -c 'os.system("rm -rf /")' is still L3.
// A call is one of execNames, optional spaces and "(" (the regexp
// execCallPattern in the tests, which check the two agree; scanning by hand
// avoids a backtracking regexp's attempt at every byte).
// execNames are the names of calls that run a command, in order: a literal name and what
// may follow it before the spaces and "(": nothing, any word characters
// (\w*) or at least one (\w+).
var execNames = []struct {
	name string
	tail byte // 0, '*' or '+'
}{
	{"os.system", 0}, {"os.popen", 0}, {"os.exec", '*'}, {"subprocess.", '+'}, {"commands.", '+'},
	{"system", 0}, {"exec", 0}, {"execSync", 0}, {"execFile", '*'}, {"spawn", '*'}, {"popen", 0},
	{"shell_exec", 0}, {"passthru", 0}, {"proc_open", 0}, {"Runtime.getRuntime().exec", 0},
	{"IO.popen", 0}, {"Open3.", '+'},
}

// execCalls returns where the argument list of each of the first n calls
// execCall matches starts (just after its "("), leftmost first, as
// regexp's FindAllStringIndex would report their ends.
func execCalls(code string, n int) []int {
	var out []int
	for i := 0; i < len(code) && len(out) < n; i++ {
		if !isIdent(code[i]) || i > 0 && isIdent(code[i-1]) {
			continue // every name starts a word (\b)
		}
		for _, e := range execNames {
			if end, ok := execCallAt(code, i, e.name, e.tail); ok {
				out = append(out, end)
				i = end - 1
				break
			}
		}
	}
	return out
}

// execCallAt reports whether code at i is name, its tail, spaces and "(",
// and where that "(" ends.
func execCallAt(code string, i int, name string, tail byte) (int, bool) {
	if !strings.HasPrefix(code[i:], name) {
		return 0, false
	}
	j := i + len(name)
	if tail != 0 {
		k := j
		for k < len(code) && isIdent(code[k]) {
			k++
		}
		if tail == '+' && k == j {
			return 0, false
		}
		j = k
	}
	for j < len(code) && isRESpace(code[j]) {
		j++
	}
	if j < len(code) && code[j] == '(' {
		return j + 1, true
	}
	return 0, false
}

// isRESpace is regexp's \s.
func isRESpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

// backtick finds `cmd` and %x(cmd) in perl, ruby and php.
var backtick = regexp.MustCompile("`([^`]*)`|%x\\(([^)]*)\\)|\\bqx\\s*[({/]([^)}/]*)[)}/]")

// execStrings returns the shell commands found in exec calls in code.
func execStrings(code string) []string {
	if !execHint(code) {
		return nil
	}
	var out []string
	for _, at := range execCalls(code, 8) {
		out = append(out, strings.Join(stringLiterals(balanced(code[at:])), " "))
	}
	// Every backtick match holds one of these.
	if strings.IndexByte(code, '`') >= 0 || strings.Contains(code, "%x") || strings.Contains(code, "qx") {
		for _, m := range backtick.FindAllStringSubmatch(code, 8) {
			out = append(out, m[1]+m[2]+m[3])
		}
	}
	return out
}

// execHint is a cheap test for code that may match execCall or backtick.
func execHint(code string) bool {
	for _, h := range []string{"system", "popen", "exec", "Exec", "spawn", "subprocess", "commands.", "shell_exec", "passthru", "proc_open", "Open3", "`", "%x", "qx"} {
		if strings.Contains(code, h) {
			return true
		}
	}
	return false
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

// deleteFuncs are file-destroying functions of languages the guard cannot
// parse, and whether they delete a whole tree. A name starting with "." is
// a method (pathlib's Path(…).unlink(), require("fs").rmSync(…)).
var deleteFuncs = []struct {
	name      string
	recursive bool
}{
	{"shutil.rmtree", true}, {"FileUtils.rm_rf", true}, {"FileUtils.rm_r", true}, {"FileUtils.rmtree", true},
	{"FileUtils.remove_dir", true}, {"FileUtils.remove_entry", true}, {"FileUtils.rm_tree", true},
	{"rmtree", true}, {"remove_tree", true}, {"Deno.remove", true}, {"Deno.removeSync", true},
	{".rmSync", true}, {".rm", true}, {".rmdirSync", true}, {".removeSync", true}, {".emptyDir", true},
	{".emptyDirSync", true},
	{"os.remove", false}, {"os.unlink", false}, {"os.rmdir", false}, {"os.removedirs", false},
	{".unlink", false}, {".rmdir", false}, {".remove", false}, {"File.delete", false}, {"FileUtils.rm", false},
	{"FileUtils.rm_f", false}, {"FileUtils.remove_file", false}, {"Dir.rmdir", false}, {"Dir.delete", false},
	{".unlinkSync", false}, {"unlink", false},
}

// deleteHint is a cheap test for code that may call one of deleteFuncs.
func deleteHint(code string) bool {
	for _, h := range []string{"rm", "remove", "unlink", "delete", "emptyDir"} {
		if strings.Contains(code, h) {
			return true
		}
	}
	return false
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// deleteCallAt reports whether code at i calls the function name (a whole
// word followed by "(", a quoted argument or perl's glob), and where its
// arguments start.
func deleteCallAt(code string, i int, name string) (int, bool) {
	if name[0] != '.' && i > 0 && (isIdent(code[i-1]) || code[i-1] == '.' && !strings.Contains(name, ".")) {
		return 0, false
	}
	j := i + len(name)
	if j < len(code) && isIdent(code[j]) {
		return 0, false
	}
	k := j
	for k < len(code) && (code[k] == ' ' || code[k] == '\t') {
		k++
	}
	switch {
	case k < len(code) && code[k] == '(':
		return k, true
	case k > j && k < len(code) && (code[k] == '"' || code[k] == '\''):
		return k, true
	case k > j && strings.HasPrefix(code[k:], "glob"):
		return k, true
	}
	return 0, false
}

// absPaths returns the first n absolute path literals in code: a quote,
// "/", then no quote or space up to a quote (the regexp
// ['"](/[^'"\s]*)['"] in the tests, which check the two agree), each as
// where its path starts and ends.
func absPaths(code string, n int) [][2]int {
	var out [][2]int
	for i := 0; i+1 < len(code) && len(out) < n; i++ {
		if !isQuote(code[i]) || code[i+1] != '/' {
			continue
		}
		j := i + 2
		for j < len(code) && !isQuote(code[j]) && !isRESpace(code[j]) {
			j++
		}
		if j < len(code) && isQuote(code[j]) {
			out = append(out, [2]int{i + 1, j})
			i = j
		}
	}
	return out
}

func isQuote(c byte) bool { return c == '\'' || c == '"' }

// isBarePath reports whether s is exactly one absolute path literal.
func isBarePath(s string) bool {
	m := absPaths(s, 1)
	return len(m) == 1 && m[0][0] == 1 && m[0][1] == len(s)-1
}

// maxDeletes bounds the delete calls judged per piece of code.
const maxDeletes = 8

// deleteCalls returns the shell command each file-destroying call amounts
// to: shutil.rmtree("/etc") is rm -rf /etc, os.remove("/etc/passwd") is rm
// /etc/passwd. A call whose path the guard cannot read (a loop over
// os.listdir("/etc")) is judged on every absolute path the code names, as
// rm of everything in it.
func deleteCalls(code string) [][]word {
	if !deleteHint(code) {
		return nil
	}
	var out [][]word
	n := 0
	for _, f := range deleteFuncs {
		for from := 0; n < maxDeletes; {
			i := strings.Index(code[from:], f.name)
			if i < 0 {
				break
			}
			i += from
			from = i + len(f.name)
			at, ok := deleteCallAt(code, i, f.name)
			if !ok {
				continue
			}
			n++
			out = append(out, deleteArgv(code, i, at, f.recursive)...)
		}
	}
	return out
}

// deleteArgv turns one delete call (name at i, arguments at at) into rm
// commands on the paths it names.
func deleteArgv(code string, i, at int, recursive bool) [][]word {
	flags := "-f"
	if recursive {
		flags = "-rf"
	}
	args := code[at:]
	if args[0] == '(' {
		args = balanced(args[1:])
	} else if e := strings.IndexAny(args, ";\n"); e >= 0 {
		args = args[:e] // unlink "/x", rm_r "/y": up to the statement's end
	}
	// pathlib.Path("/etc/x").unlink(): the path comes before the call.
	if code[i] == '.' {
		args = code[max(0, i-200):i] + args
	}
	// A bare literal is the target; a literal inside an expression
	// (os.path.join("/etc", f)) is a directory something in it is.
	trimmed := strings.TrimSpace(args)
	bare := isBarePath(trimmed)
	var paths []string
	for _, m := range absPaths(args, 4) {
		p := args[m[0]:m[1]]
		paths = append(paths, p)
		if !bare {
			paths = append(paths, strings.TrimSuffix(p, "/")+"/*")
		}
	}
	if len(paths) == 0 {
		for _, m := range absPaths(code, 4) {
			paths = append(paths, strings.TrimSuffix(code[m[0]:m[1]], "/")+"/*")
		}
	}
	out := make([][]word, 0, len(paths))
	for _, p := range paths {
		out = append(out, []word{{val: "rm", lit: true}, {val: flags, lit: true}, {val: "--", lit: true}, {val: p, lit: true}})
	}
	return out
}
