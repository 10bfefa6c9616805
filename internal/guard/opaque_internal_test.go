package guard

import (
	"regexp"
	"slices"
	"testing"
)

// execCallPattern is what execCalls implements: each name of execNames at
// the start of a word, its tail, spaces and "(".
var execCallPattern = regexp.MustCompile(`(?:\bos\.system|\bos\.popen|\bos\.exec\w*|\bsubprocess\.\w+|\bcommands\.\w+|\bsystem|\bexec|\bexecSync|\bexecFile\w*|\bspawn\w*|\bpopen|\bshell_exec|\bpassthru|\bproc_open|\bRuntime\.getRuntime\(\)\.exec|\bIO\.popen|\bOpen3\.\w+)\s*\(`)

func execCallsByRegexp(code string, n int) []int {
	var out []int
	for _, loc := range execCallPattern.FindAllStringIndex(code, n) {
		out = append(out, loc[1])
	}
	return out
}

// FuzzExecCalls checks that the hand-written scanner finds exactly the calls
// the regexp finds.
func FuzzExecCalls(f *testing.F) {
	for _, s := range []string{
		`import os; os.system("rm -rf /")`, `subprocess.run(['rm', '-rf', '/'])`, `subprocess.(x)`, `subprocess.check_output ("id")`,
		`os.execvp("sh", ["sh"])`, `os.exec("x")`, `bos.system("x")`, `_system("x")`, `system ("id")`, "system\t\n(\"id\")", "system\v(\"id\")",
		`systemctl("x")`, `exec("x"); execSync("y"); execFileSync("z"); execFile ("w")`, `spawn("a") spawnSync("b") spawn_x ("c")`,
		`popen("x") os.popen("y") IO.popen("z") proc_open("a") shell_exec("b") passthru("c")`, `Runtime.getRuntime().exec("rm")`,
		`Runtime.getRuntime() .exec("rm")`, `Open3.capture2("ls") Open3.("x")`, `commands.getoutput("id") commands.("x")`,
		`é system("x") ésystem("y") 1system("z")`, "\xffsystem(\"x\")", `system(system(system("x")))`, `os.system`, `system`, `system   `,
		`a=system("1");b=exec("2");c=popen("3");d=spawn("4");e=system("5");f=exec("6");g=popen("7");h=spawn("8");i=system("9")`,
		`BEGIN { system("rm -rf /") }`, `os.system(os.popen("x"))`, `execSystem("x") exec.system("y")`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		if want, got := execCallsByRegexp(code, 8), execCalls(code, 8); !slices.Equal(got, want) {
			t.Fatalf("execCalls(%q) = %v, the regexp finds %v", code, got, want)
		}
	})
}

// absPathPattern is what absPaths implements.
var absPathPattern = regexp.MustCompile(`['"](/[^'"\s]*)['"]`)

// FuzzAbsPaths checks that the hand-written scanner finds exactly the path
// literals the regexp finds, and says a string is one of them exactly when
// the regexp's leftmost match is the whole string.
func FuzzAbsPaths(f *testing.F) {
	for _, s := range []string{
		`os.remove("/etc/passwd")`, `shutil.rmtree('/var/lib/mysql')`, `os.path.join("/etc", f)`, `"/a" '/b' "/c' '/d" "/e f" "/g"`,
		`'/'`, `"/`, `"/x`, `""/x"`, `'/a''/b'`, "\"/a\tb\"", "\"/\xff\"", `rm("/a") + rm("/b") + rm("/c") + rm("/d") + rm("/e")`,
		`"/etc/*"`, ` "/etc" `, `'/etc'x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		var want [][2]int
		for _, m := range absPathPattern.FindAllStringSubmatchIndex(code, 4) {
			want = append(want, [2]int{m[2], m[3]})
		}
		if got := absPaths(code, 4); !slices.Equal(got, want) {
			t.Fatalf("absPaths(%q) = %v, the regexp finds %v", code, got, want)
		}
		if got, want := isBarePath(code), code != "" && absPathPattern.FindString(code) == code; got != want {
			t.Fatalf("isBarePath(%q) = %v, want %v", code, got, want)
		}
	})
}
