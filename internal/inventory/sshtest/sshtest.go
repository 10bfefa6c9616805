// Package sshtest runs real OpenSSH sshd servers on loopback for tests and
// benchmarks: generated host and user keys in a temporary directory, free
// ports, verbose logs whose path is exposed, and optional password auth and
// TCP forwarding (for jump hosts).
//
// Start and StartMany are for tests: they skip when sshd is missing (and fail
// when CI=true) and stop the servers in t.Cleanup. Launch and LaunchMany are
// the same for programs such as bench/fanout.
package sshtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/vault"
)

// SSHDPath is where Debian's openssh-server installs sshd.
const SSHDPath = "/usr/sbin/sshd"

// maxListenPerProcess is OpenSSH's limit of listen sockets per sshd process.
const maxListenPerProcess = 16

// startTimeout bounds how long an sshd may take to report it is listening.
const startTimeout = 15 * time.Second

// ErrUnavailable means sshd cannot be run here (not installed), or the
// requested option cannot be honoured (password auth when not root).
var ErrUnavailable = errors.New("sshtest: unavailable")

// Options configures a test sshd.
type Options struct {
	// Addr is the loopback IP to listen on, such as "127.0.0.2". Linux routes
	// all of 127.0.0.0/8 to lo. Default "127.0.0.1".
	Addr string
	// Password enables password authentication for a dedicated local user
	// (created once per machine with useradd; needs root). Server.PasswordUser
	// and Server.Password hold the credentials.
	Password bool
	// AllowTCPForwarding lets clients use the server as a jump host.
	AllowTCPForwarding bool
	// LogLevel is sshd's LogLevel. Default VERBOSE, which logs every
	// connection and authentication; DEBUG1 also logs forwarded connections.
	LogLevel string
	// ExtraConfig lines are appended to sshd_config.
	ExtraConfig []string
}

// Server is one listening address of a running sshd.
type Server struct {
	// Addr is the IP the server listens on.
	Addr string
	// Port is the TCP port.
	Port int
	// HostKey is the server's public host key in authorized_keys format.
	HostKey string
	// UserKey is an unencrypted OpenSSH PEM private key accepted for User.
	UserKey vault.Secret
	// User is the account key auth logs in as: the current user.
	User string
	// PasswordUser and Password are set when Options.Password is.
	PasswordUser string
	// Password is the password of PasswordUser.
	Password vault.Secret
	// LogPath is sshd's log file.
	LogPath string
	// Dir holds the keys, config and log.
	Dir string

	proc *process
}

type process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logPath string
	once    sync.Once
}

// HostPort returns "Addr:Port".
func (s *Server) HostPort() string { return net.JoinHostPort(s.Addr, strconv.Itoa(s.Port)) }

// PID returns the process id of the sshd listener process.
func (s *Server) PID() int { return s.proc.cmd.Process.Pid }

// Hop returns an sshexec.Hop that logs in as User with UserKey and pins HostKey.
func (s *Server) Hop() sshexec.Hop {
	return sshexec.Hop{
		ServerID:      "srv-" + s.HostPort(),
		Name:          "sshtest-" + s.HostPort(),
		Host:          s.Addr,
		Port:          s.Port,
		User:          s.User,
		Auth:          sshexec.Auth{PrivateKey: s.UserKey},
		HostKey:       s.HostKey,
		HostKeyPolicy: sshexec.PolicyPin,
	}
}

// Log returns the server's log so far. Servers from StartMany share one log
// per sshd process.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// CountLog returns how many log lines contain substr.
func (s *Server) CountLog(substr string) int {
	return strings.Count(s.Log(), substr)
}

// WaitLog waits until at least n log lines contain substr, or ctx is done.
// sshd's children write their lines asynchronously, after the client has
// seen the effect, so tests wait rather than read once.
func (s *Server) WaitLog(ctx context.Context, substr string, n int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got := s.CountLog(substr)
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshtest: %d of %d log lines with %q in %s: %w", got, n, substr, s.LogPath, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop stops the sshd process (all its servers, for StartMany) and waits
// for it to exit. Sessions already open are left to their own sshd children,
// which exit when their clients disconnect.
func (s *Server) Stop() error { return s.proc.stop() }

func (p *process) stop() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return nil
}

// Start starts one sshd for a test and stops it in t.Cleanup. It skips the
// test if sshd is unavailable, unless CI=true.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	servers := StartMany(tb, 1, opts)
	return servers[0]
}

// StartMany starts n servers sharing one host key, one user key and one
// config, on n ports of opts.Addr, spread over ceil(n/16) sshd processes.
func StartMany(tb testing.TB, n int, opts Options) []*Server {
	tb.Helper()
	servers, stop, err := LaunchMany(tb.TempDir(), n, opts)
	if errors.Is(err, ErrUnavailable) && os.Getenv("CI") != "true" {
		tb.Skipf("skipping: %v", err)
	}
	if err != nil {
		tb.Fatalf("sshtest: %v", err)
	}
	tb.Cleanup(stop)
	return servers
}

// Launch starts one sshd with its files in dir. Call Stop when done.
func Launch(dir string, opts Options) (*Server, error) {
	servers, _, err := LaunchMany(dir, 1, opts)
	if err != nil {
		return nil, err
	}
	return servers[0], nil
}

// LaunchMany starts n servers like StartMany, with their files in dir, and
// returns a func that stops them all.
func LaunchMany(dir string, n int, opts Options) ([]*Server, func(), error) {
	if n < 1 {
		return nil, nil, fmt.Errorf("sshtest: n = %d, want >= 1", n)
	}
	if _, err := os.Stat(SSHDPath); err != nil {
		return nil, nil, fmt.Errorf("%w: %s not found (apt-get install openssh-server)", ErrUnavailable, SSHDPath)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "VERBOSE"
	}
	me, err := user.Current()
	if err != nil {
		return nil, nil, fmt.Errorf("sshtest: current user: %w", err)
	}
	if me.Uid == "0" {
		// sshd running as root needs its privilege separation directory.
		// Never removed: other sshds (other tests) may be using it.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, nil, fmt.Errorf("sshtest: privsep dir: %w", err)
		}
	}
	base := Server{Addr: opts.Addr, User: me.Username, Dir: dir}
	if opts.Password {
		if me.Uid != "0" {
			return nil, nil, fmt.Errorf("%w: password auth needs a local test user, which only root can create", ErrUnavailable)
		}
		pw, err := ensurePasswordUser()
		if err != nil {
			return nil, nil, err
		}
		base.PasswordUser, base.Password = PasswordUser, pw
	}
	hostPub, err := writeKey(filepath.Join(dir, "host_ed25519"))
	if err != nil {
		return nil, nil, err
	}
	base.HostKey = hostPub
	userPub, err := writeKey(filepath.Join(dir, "user_ed25519"))
	if err != nil {
		return nil, nil, err
	}
	pemBytes, err := os.ReadFile(filepath.Join(dir, "user_ed25519"))
	if err != nil {
		return nil, nil, fmt.Errorf("sshtest: %w", err)
	}
	base.UserKey = vault.Secret(pemBytes)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(userPub+"\n"), 0o600); err != nil {
		return nil, nil, fmt.Errorf("sshtest: %w", err)
	}

	var (
		servers []*Server
		procs   []*process
	)
	stopAll := func() {
		for _, p := range procs {
			_ = p.stop()
		}
	}
	for k := 0; len(servers) < n; k++ {
		count := min(maxListenPerProcess, n-len(servers))
		p, ports, err := startProcess(dir, k, count, opts, base)
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		procs = append(procs, p)
		for _, port := range ports {
			s := base
			s.Port = port
			s.LogPath = p.logPath
			s.proc = p
			servers = append(servers, &s)
		}
	}
	return servers, stopAll, nil
}

// PasswordUser is the local account password-auth servers accept.
const PasswordUser = "it0sshtest"

// ensurePasswordUser creates PasswordUser once per machine with a random
// password kept in a root-only file, so concurrent test processes agree on it
// without a password in the source.
func ensurePasswordUser() (vault.Secret, error) {
	const dir = "/run/it0-sshtest"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("sshtest: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("sshtest: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("sshtest: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too

	pwFile := filepath.Join(dir, "password")
	if _, err := user.Lookup(PasswordUser); err != nil {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", PasswordUser).CombinedOutput(); err != nil {
			return "", fmt.Errorf("%w: useradd %s: %v: %s", ErrUnavailable, PasswordUser, err, bytes.TrimSpace(out))
		}
		_ = os.Remove(pwFile)
	}
	if b, err := os.ReadFile(pwFile); err == nil && len(b) > 0 {
		return vault.Secret(b), nil
	}
	pw := rand.Text()
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(PasswordUser + ":" + pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: chpasswd: %v: %s", ErrUnavailable, err, bytes.TrimSpace(out))
	}
	if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
		return "", fmt.Errorf("sshtest: %w", err)
	}
	return vault.Secret(pw), nil
}

// writeKey writes a new ed25519 private key in OpenSSH PEM format to path
// and returns its public key in authorized_keys format.
func writeKey(path string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("sshtest: generate key: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "sshtest")
	if err != nil {
		return "", fmt.Errorf("sshtest: marshal key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", fmt.Errorf("sshtest: %w", err)
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("sshtest: %w", err)
	}
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub))), nil
}

// startProcess starts sshd number k listening on count free ports, retrying
// with new ports when another process takes one between probe and bind.
func startProcess(dir string, k, count int, opts Options, base Server) (*process, []int, error) {
	var lastErr error
	for attempt := range 5 {
		ports, err := freePorts(opts.Addr, count)
		if err != nil {
			return nil, nil, err
		}
		cfgPath := filepath.Join(dir, fmt.Sprintf("sshd_config.%d", k))
		if err := os.WriteFile(cfgPath, []byte(config(dir, opts, base, ports)), 0o600); err != nil {
			return nil, nil, fmt.Errorf("sshtest: %w", err)
		}
		logPath := filepath.Join(dir, fmt.Sprintf("sshd.%d.%d.log", k, attempt))
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("sshtest: %w", err)
		}
		// -e sends every process's log to stderr; with -E, the per-connection
		// children (re-executed sshd) would log to syslog instead, and
		// connection lines are what tests assert on.
		cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfgPath)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		// If the test binary dies without cleanup, sshd goes with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return nil, nil, fmt.Errorf("sshtest: start sshd: %w", err)
		}
		logFile.Close()
		p := &process{cmd: cmd, done: make(chan struct{}), logPath: logPath}
		go func() {
			p.waitErr = cmd.Wait()
			close(p.done)
		}()
		err = waitListening(p, count)
		if err == nil {
			return p, ports, nil
		}
		_ = p.stop()
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, nil, lastErr
}

var errPortTaken = errors.New("sshtest: port taken")

func waitListening(p *process, count int) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		b, _ := os.ReadFile(p.logPath)
		log := string(b)
		switch {
		case strings.Count(log, "Server listening on") >= count:
			return nil
		case portTaken(log):
			return fmt.Errorf("%w: %s", errPortTaken, firstLine(log, "Bind to port"))
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.logPath)
			if portTaken(string(b)) { // it exited on the bind failure before the log was read above
				return fmt.Errorf("%w: %s", errPortTaken, firstLine(string(b), "Bind to port"))
			}
			return fmt.Errorf("sshtest: sshd exited (%v): %s", p.waitErr, bytes.TrimSpace(b))
		case <-deadline.C:
			return fmt.Errorf("sshtest: sshd not listening after %v: %s", startTimeout, log)
		case <-tick.C:
		}
	}
}

// portTaken reports whether sshd's log says another process holds one of its ports.
func portTaken(log string) bool {
	return strings.Contains(log, "Bind to port") || strings.Contains(log, "Address already in use")
}

func firstLine(log, substr string) string {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			return sc.Text()
		}
	}
	return log
}

// freePorts returns count ports that were free on addr a moment ago. All
// are held open together so they are distinct.
func freePorts(addr string, count int) ([]int, error) {
	ports := make([]int, 0, count)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range count {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			return nil, fmt.Errorf("sshtest: probe free port on %s: %w", addr, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func config(dir string, opts Options, base Server, ports []int) string {
	var b strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&b, "ListenAddress %s\n", net.JoinHostPort(opts.Addr, strconv.Itoa(p)))
	}
	yesNo := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	users := base.User
	if base.PasswordUser != "" {
		users += " " + base.PasswordUser
	}
	fmt.Fprintf(&b, `HostKey %[1]s/host_ed25519
PidFile none
AuthorizedKeysFile %[1]s/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication %[2]s
PermitEmptyPasswords no
KbdInteractiveAuthentication no
PermitRootLogin yes
AllowUsers %[3]s
StrictModes no
UsePAM no
UseDNS no
MaxStartups 1000
LoginGraceTime 30
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding %[4]s
AllowAgentForwarding no
PermitTunnel no
Subsystem sftp internal-sftp
LogLevel %[5]s
# bash sources ~/.bashrc for ssh commands unless SHLVL says it is nested;
# the baseline (fanout-baseline.sh) does the same, so comparisons are fair.
SetEnv SHLVL=1
`, dir, yesNo(opts.Password), users, yesNo(opts.AllowTCPForwarding), opts.LogLevel)
	for _, l := range opts.ExtraConfig {
		b.WriteString(l + "\n")
	}
	return b.String()
}
