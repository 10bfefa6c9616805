package sshexec_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/vault"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 20 * time.Second

// testLogger writes to the test log; IT0_TEST_LOG=debug shows debug lines.
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("IT0_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// newExecutor returns an Executor closed at the end of the test.
func newExecutor(t *testing.T, cfg sshexec.Config) *sshexec.Executor {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	e := sshexec.New(cfg)
	t.Cleanup(func() { e.Close() })
	return e
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newKeyPEM returns a fresh ed25519 private key in OpenSSH PEM format and
// its public key in authorized_keys format.
func newKeyPEM(t *testing.T) (vault.Secret, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return vault.Secret(pem.EncodeToMemory(block)), strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp)))
}

// processGone reports whether pid has exited (a zombie counts as gone:
// nobody may reap it in a container without an init).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// waitGone waits until every pid has exited.
func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		alive := []int{}
		for _, p := range pids {
			if !processGone(p) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("remote processes %v still running after %v", alive, waitTimeout)
		case <-tick.C:
		}
	}
}

// lines collects OnLine calls and lets a test wait for the nth.
type lines struct {
	mu    sync.Mutex
	got   []string
	added chan struct{}
}

func newLines() *lines { return &lines{added: make(chan struct{}, 1024)} }

func (l *lines) onLine(stream, line string) {
	l.mu.Lock()
	l.got = append(l.got, stream+":"+line)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// pids parses every "pid:N" stdout line.
func (l *lines) pids() []int {
	var out []int
	for _, s := range l.all() {
		if n, ok := strings.CutPrefix(s, "stdout:pid:"); ok {
			p, err := strconv.Atoi(n)
			if err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// wait blocks until at least n lines arrived.
func (l *lines) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		got := len(l.got)
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-l.added:
		case <-deadline.C:
			t.Fatalf("got %d lines, want %d: %q", got, n, l.all())
		}
	}
}

func target(hops ...sshexec.Hop) sshexec.Target { return sshexec.Target{Hops: hops} }

func mustRun(t *testing.T, e *sshexec.Executor, tg sshexec.Target, cmd string) sshexec.Result {
	t.Helper()
	res, err := e.Run(ctxTimeout(t), tg, sshexec.Command{Cmd: cmd, Timeout: waitTimeout})
	if err != nil {
		t.Fatalf("Run(%q): %v", cmd, err)
	}
	return res
}

func fmtResult(r sshexec.Result) string {
	return fmt.Sprintf("exit=%d stdout=%q stderr=%q", r.ExitCode, r.Stdout, r.Stderr)
}
