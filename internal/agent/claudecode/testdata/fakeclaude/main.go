// Command fakeclaude stands in for the claude CLI in claudecode's tests. It replays a stream-json fixture
// (FAKECLAUDE_FIXTURE) to stdout and records its argv, cwd and IT0_* environment as JSON
// (FAKECLAUDE_RECORD). Fixture lines starting with '#' are directives, not output:
//
//	#stderr <text>     write text to stderr
//	#exit <n>          exit with status n now
//	#wait              block until SIGTERM, at most 30s (the CLI busy with its turn)
//	#hang              block until SIGTERM, forever
//	#spawn <pidfile>   start a child that hangs in the same process group; write "<pid> <childpid>"
//	#huge <n>          write a valid JSON line of about n bytes
//
// On SIGTERM it prints an error_during_execution result and exits 143, like the real CLI, unless
// FAKECLAUDE_IGNORE_TERM=1. `--version` prints a version (or fails with FAKECLAUDE_VERSION_FAIL=1).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var outMu sync.Mutex

func emitLine(s string) {
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.WriteString(s + "\n")
}

func main() {
	if os.Getenv("FAKECLAUDE_CHILD") == "1" {
		signal.Ignore(syscall.SIGTERM)
		select {}
	}
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		if os.Getenv("FAKECLAUDE_VERSION_FAIL") == "1" {
			fmt.Fprintln(os.Stderr, "version: broken install")
			os.Exit(1)
		}
		fmt.Println("2.1.240 (Claude Code)")
		return
	}
	if rec := os.Getenv("FAKECLAUDE_RECORD"); rec != "" {
		record(rec)
	}
	var sessionID atomic.Value
	sessionID.Store("fake-session")
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	terminated := make(chan struct{})
	go func() {
		for range term {
			if os.Getenv("FAKECLAUDE_IGNORE_TERM") == "1" {
				continue
			}
			close(terminated)
			emitLine(`{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["Request was aborted."],"session_id":"` + sessionID.Load().(string) + `","terminal_reason":"aborted_streaming","num_turns":1}`)
			os.Exit(143)
		}
	}()

	f, err := os.Open(os.Getenv("FAKECLAUDE_FIXTURE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeclaude:", err)
		os.Exit(1)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "#") {
			var v struct {
				SessionID string `json:"session_id"`
			}
			if json.Unmarshal([]byte(l), &v) == nil && v.SessionID != "" {
				sessionID.Store(v.SessionID)
			}
			emitLine(l)
			continue
		}
		cmd, arg, _ := strings.Cut(l[1:], " ")
		switch cmd {
		case "stderr":
			fmt.Fprintln(os.Stderr, arg)
		case "exit":
			n, _ := strconv.Atoi(arg)
			os.Exit(n)
		case "wait":
			select {
			case <-terminated:
				select {} // the handler exits
			case <-time.After(30 * time.Second):
			}
		case "hang":
			select {}
		case "spawn":
			child := exec.Command(os.Args[0])
			child.Env = append(os.Environ(), "FAKECLAUDE_CHILD=1")
			if err := child.Start(); err != nil {
				fmt.Fprintln(os.Stderr, "fakeclaude: spawn:", err)
				os.Exit(1)
			}
			if err := os.WriteFile(arg, fmt.Appendf(nil, "%d %d", os.Getpid(), child.Process.Pid), 0o600); err != nil {
				os.Exit(1)
			}
		case "huge":
			n, _ := strconv.Atoi(arg)
			emitLine(`{"type":"assistant","session_id":"` + sessionID.Load().(string) + `","message":{"id":"msg_huge","role":"assistant","content":[{"type":"text","text":"` + strings.Repeat("x", n) + `"}]}}`)
		}
	}
}

func record(path string) {
	cwd, _ := os.Getwd()
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "IT0_") {
			env[k] = v
		}
	}
	b, _ := json.Marshal(map[string]any{"args": os.Args[1:], "cwd": cwd, "env": env})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		os.Exit(1)
	}
}
