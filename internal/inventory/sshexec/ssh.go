// Package sshexec runs commands on servers over SSH with golang.org/x/crypto/ssh:
// no ssh binary and no key files on disk.
//
// A Target is a chain of hops, jump hosts first: each next hop is dialled
// through the previous hop's connection (direct-tcpip), so any depth of
// ProxyJump works without the jump hosts holding keys. Host keys are checked
// against the key stored for each server (trust on first use only when the
// server's policy allows it and no key is stored). Connections are pooled per
// chain, kept alive, evicted when idle or broken, and shared by jump-host
// prefixes, so a second command to a host, or a fan-out to many hosts behind
// one bastion, costs a channel instead of a handshake.
//
// Commands run with stdin held open; when a command times out or its context
// is cancelled the executor signals the remote process group, closes stdin
// and the session, and a watcher started with the command kills the process
// group when stdin closes, so the remote process dies even if the SSH
// server ignores signal requests or the connection drops.
package sshexec

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/it0/it0/internal/vault"
)

// Defaults for Config and Command fields left zero.
const (
	// DefaultDialTimeout bounds connecting to one hop.
	DefaultDialTimeout = 10 * time.Second
	// DefaultKeepAlive is the keepalive interval on idle pooled connections.
	DefaultKeepAlive = 15 * time.Second
	// DefaultMaxOutputBytes caps each output stream of a command.
	DefaultMaxOutputBytes = 1 << 20
	// DefaultPoolIdleTimeout closes pooled connections unused that long.
	DefaultPoolIdleTimeout = 5 * time.Minute
	// DefaultMaxDepth is the most hops in a Target.
	DefaultMaxDepth = 5
	// DefaultMaxSessionsPerConn stays under OpenSSH's MaxSessions (10).
	DefaultMaxSessionsPerConn = 8
	// DefaultParallelism is FanOut's default. The client costs about a
	// millisecond of CPU per host, so the bound protects the targets' and
	// jump hosts' sshd (and the network), not IT0; past ~64 concurrent
	// handshakes a loopback benchmark on 2 cores got no faster.
	DefaultParallelism = 64
	// DefaultPort is the SSH port used when Hop.Port is 0.
	DefaultPort = 22
)

var (
	// ErrEmptyTarget means a Target has no hops.
	ErrEmptyTarget = errors.New("ssh: target has no hops")
	// ErrChainTooDeep means a Target has more hops than Config.MaxDepth.
	ErrChainTooDeep = errors.New("ssh: jump chain too deep")
	// ErrChainCycle means a Target visits the same server twice.
	ErrChainCycle = errors.New("ssh: jump chain has a cycle")
	// ErrInvalidHop means a hop misses its host or user, or has a bad port
	// or host key policy.
	ErrInvalidHop = errors.New("ssh: invalid hop")
	// ErrHostKeyMismatch means the server presented a host key other than
	// the one stored for it. The connection is refused and
	// Config.OnHostKeyMismatch is called.
	ErrHostKeyMismatch = errors.New("ssh: host key mismatch")
	// ErrHostKeyUnknown means no host key is stored for a server whose
	// policy is "pin".
	ErrHostKeyUnknown = errors.New("ssh: host key unknown")
	// ErrHostKeyInvalid means the stored host key does not parse.
	ErrHostKeyInvalid = errors.New("ssh: stored host key is invalid")
	// ErrNoCredentials means a hop has neither a private key nor a password.
	ErrNoCredentials = errors.New("ssh: no credentials")
	// ErrPrivateKey means a private key does not parse or its passphrase is
	// missing or wrong.
	ErrPrivateKey = errors.New("ssh: bad private key")
	// ErrTimeout means Command.Timeout expired; the remote process was killed.
	ErrTimeout = errors.New("ssh: command timed out")
	// ErrConnectionLost means the connection died while a command ran; the
	// command's outcome is unknown.
	ErrConnectionLost = errors.New("ssh: connection lost")
	// ErrClosed means the Executor was closed.
	ErrClosed = errors.New("ssh: executor closed")
)

// HostKeyPolicy says what to do when no host key is stored for a server.
type HostKeyPolicy string

// Host key policies. The zero value behaves as PolicyPin.
const (
	// PolicyPin refuses servers without a stored host key.
	PolicyPin HostKeyPolicy = "pin"
	// PolicyTOFU accepts the first key seen when none is stored and reports
	// it through Config.OnHostKeyLearned for the caller to store.
	PolicyTOFU HostKeyPolicy = "tofu"
)

// Stage names the step of connecting to a hop that failed.
type Stage string

// Stages, in the order a connection goes through them.
const (
	StageConfig    Stage = "config"    // the Target is invalid
	StageDNS       Stage = "dns"       // the host name did not resolve
	StageTCP       Stage = "tcp"       // the TCP connection (or jump-host forward) failed
	StageHandshake Stage = "handshake" // SSH version or key exchange failed
	StageHostKey   Stage = "hostkey"   // the host key was refused
	StageAuth      Stage = "auth"      // authentication failed
	StageTimeout   Stage = "timeout"   // Config.DialTimeout expired
	StageSession   Stage = "session"   // the server refused to open a session
)

// Auth holds the credentials for one hop. It never prints or logs its
// values: fmt, slog and encoding/json show which fields are set.
type Auth struct {
	// PrivateKey is a PEM private key (OpenSSH, PKCS#1, PKCS#8; rsa, ecdsa,
	// ed25519), optionally encrypted with Passphrase.
	PrivateKey vault.Secret
	// Passphrase decrypts PrivateKey.
	Passphrase vault.Secret
	// Password is used for password and keyboard-interactive auth.
	Password vault.Secret
}

func (a Auth) summary() string {
	set := func(s vault.Secret) string {
		if s.IsZero() {
			return "unset"
		}
		return "[REDACTED]"
	}
	return "ssh.Auth{PrivateKey:" + set(a.PrivateKey) + " Passphrase:" + set(a.Passphrase) + " Password:" + set(a.Password) + "}"
}

// String shows which credentials are set, never their values.
func (a Auth) String() string { return a.summary() }

// GoString shows which credentials are set, never their values.
func (a Auth) GoString() string { return a.summary() }

// Format shows which credentials are set for every verb.
func (a Auth) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, a.summary()) }

// LogValue implements slog.LogValuer.
func (a Auth) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("private_key", !a.PrivateKey.IsZero()),
		slog.Bool("passphrase", !a.Passphrase.IsZero()),
		slog.Bool("password", !a.Password.IsZero()),
	)
}

// MarshalJSON shows which credentials are set.
func (a Auth) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"private_key":%t,"passphrase":%t,"password":%t}`,
		!a.PrivateKey.IsZero(), !a.Passphrase.IsZero(), !a.Password.IsZero()), nil
}

// Hop is one server on the way to a target, or the target itself.
type Hop struct {
	// ServerID identifies the server in errors, results and host key
	// callbacks, and in cycle detection.
	ServerID string
	// Name is the server's display name, for errors and results.
	Name string
	// Host is a host name or IP address.
	Host string
	// Port is the SSH port; 0 means 22.
	Port int
	// User is the login name.
	User string
	// Auth holds the credentials.
	Auth Auth
	// HostKey is the stored host key in authorized_keys format
	// ("ssh-ed25519 AAAA…"), or "" if unknown.
	HostKey string
	// HostKeyPolicy says whether an unknown host key may be trusted on
	// first use. Default PolicyPin.
	HostKeyPolicy HostKeyPolicy
}

func (h Hop) port() int {
	if h.Port == 0 {
		return DefaultPort
	}
	return h.Port
}

func (h Hop) label() string {
	switch {
	case h.Name != "":
		return h.Name
	case h.ServerID != "":
		return h.ServerID
	}
	return h.Host
}

// Target is a server and the jump hosts in front of it: Hops lists the jump
// hosts first and the target last.
type Target struct {
	Hops []Hop
}

// Command is a command to run on a target.
type Command struct {
	// Cmd is run by the target user's login shell, like `ssh host Cmd`. The
	// shell must be POSIX-like (sh, bash, dash, zsh, ksh). Stdin is empty.
	Cmd string
	// Timeout bounds the run (not the connection); 0 means no limit beyond
	// the context. When it expires the remote process is killed.
	Timeout time.Duration
	// MaxOutputBytes caps Stdout and Stderr each; 0 means
	// Config.MaxOutputBytes. Output beyond it is drained and dropped and
	// Result.Truncated is set.
	MaxOutputBytes int
	// OnLine, if set, receives each line ("stdout" or "stderr", without the
	// newline) as it arrives, within the cap. It is called from two
	// goroutines (one per stream) and must be safe for that.
	OnLine func(stream, line string)
}

// Stream names passed to Command.OnLine.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// Result is the outcome of a command.
type Result struct {
	// ExitCode is the remote exit status, 128+n when killed by signal n, or
	// -1 when there is none (timeout, cancellation, connection failure).
	ExitCode int
	Stdout   string
	Stderr   string
	// Truncated is set when output exceeded the cap.
	Truncated bool
	// Duration is the time from session start to the command's end.
	Duration time.Duration
	// TimedOut is set when Command.Timeout or the context deadline expired.
	TimedOut bool
}

// HopError reports which hop of a Target failed and at which stage.
type HopError struct {
	// Hop is the index in Target.Hops.
	Hop      int
	ServerID string
	Name     string
	Stage    Stage
	Err      error
}

// Error names the hop, the stage and the cause.
func (e *HopError) Error() string {
	name := e.Name
	if name == "" {
		name = e.ServerID
	}
	return fmt.Sprintf("ssh: hop %d (%s): %s: %v", e.Hop, name, e.Stage, e.Err)
}

// Unwrap returns the underlying error.
func (e *HopError) Unwrap() error { return e.Err }

func hopError(i int, h Hop, stage Stage, err error) *HopError {
	return &HopError{Hop: i, ServerID: h.ServerID, Name: h.Name, Stage: stage, Err: err}
}

// HopResult is the connectivity check result for one hop.
type HopResult struct {
	Hop      int    `json:"hop"`
	ServerID string `json:"server_id"`
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	// Stage is where the hop failed; empty when OK or not attempted.
	Stage Stage `json:"stage,omitempty"`
	// Error is the failure, or why the hop was not attempted.
	Error string `json:"error,omitempty"`
	// Latency is the time to connect, complete the handshake and
	// authenticate to this hop (through the hops before it).
	Latency time.Duration `json:"latency_ns"`
}

// Config configures an Executor. Zero fields take the defaults above.
type Config struct {
	// DialTimeout bounds connecting to one hop: TCP (or the jump-host
	// forward), key exchange and authentication.
	DialTimeout time.Duration
	// KeepAlive is the interval between keepalive requests on idle pooled
	// connections; a connection that misses one is evicted. Negative
	// disables keepalives.
	KeepAlive time.Duration
	// MaxOutputBytes is the default Command.MaxOutputBytes.
	MaxOutputBytes int
	// PoolIdleTimeout closes pooled connections unused for that long.
	// Negative disables pooling: every command gets a fresh connection.
	PoolIdleTimeout time.Duration
	// MaxDepth is the most hops a Target may have.
	MaxDepth int
	// MaxSessionsPerConn bounds concurrent commands on one pooled
	// connection; more wait. Keep it below the servers' MaxSessions
	// (OpenSSH default 10).
	MaxSessionsPerConn int
	// OnHostKeyLearned is called after a successful login to a server with
	// PolicyTOFU and no stored key, with the key in authorized_keys format.
	// The caller stores it. It runs on the dialling goroutine: keep it short.
	OnHostKeyLearned func(serverID, key string)
	// OnHostKeyMismatch is called when a server presents a key other than
	// its stored one; the connection is refused. The caller audits it. It
	// runs during the key exchange: keep it short.
	OnHostKeyMismatch func(serverID, want, got string)
	// Logger receives debug logs of connections. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.MaxOutputBytes <= 0 {
		c.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if c.PoolIdleTimeout == 0 {
		c.PoolIdleTimeout = DefaultPoolIdleTimeout
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.MaxSessionsPerConn <= 0 {
		c.MaxSessionsPerConn = DefaultMaxSessionsPerConn
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate checks t against the executor's limits.
func validate(t Target, maxDepth int) error {
	if len(t.Hops) == 0 {
		return &HopError{Hop: 0, Stage: StageConfig, Err: ErrEmptyTarget}
	}
	if len(t.Hops) > maxDepth {
		h := t.Hops[maxDepth]
		return hopError(maxDepth, h, StageConfig, fmt.Errorf("%w: %d hops, at most %d", ErrChainTooDeep, len(t.Hops), maxDepth))
	}
	// A hop is identified by its server id, or by user@host:port when it
	// has none: the same private address can be a different server behind
	// a different jump host.
	seen := make(map[string]int, len(t.Hops))
	for i, h := range t.Hops {
		switch {
		case h.Host == "":
			return hopError(i, h, StageConfig, fmt.Errorf("%w: host is empty", ErrInvalidHop))
		case h.User == "":
			return hopError(i, h, StageConfig, fmt.Errorf("%w: user is empty", ErrInvalidHop))
		case h.Port < 0 || h.Port > 65535:
			return hopError(i, h, StageConfig, fmt.Errorf("%w: port %d is outside 1-65535", ErrInvalidHop, h.Port))
		case h.HostKeyPolicy != "" && h.HostKeyPolicy != PolicyPin && h.HostKeyPolicy != PolicyTOFU:
			return hopError(i, h, StageConfig, fmt.Errorf("%w: host key policy %q is not %q or %q", ErrInvalidHop, h.HostKeyPolicy, PolicyPin, PolicyTOFU))
		}
		id := "id:" + h.ServerID
		if h.ServerID == "" {
			id = fmt.Sprintf("addr:%s@%s:%d", h.User, strings.ToLower(h.Host), h.port())
		}
		if j, ok := seen[id]; ok {
			return hopError(i, h, StageConfig, fmt.Errorf("%w: %s is hop %d and hop %d", ErrChainCycle, h.label(), j, i))
		}
		seen[id] = i
	}
	return nil
}
