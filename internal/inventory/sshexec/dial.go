package sshexec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// clientVersion is sent in the SSH banner.
const clientVersion = "SSH-2.0-IT0"

// Algorithm preferences. The server picks the first of ours it supports.
// ML-KEM hybrid first for post-quantum safety where the server has it
// (OpenSSH 9.9+), then curve25519, the cheapest classic exchange; AES-GCM
// before ChaCha20-Poly1305 because AES-NI makes it cheaper on servers and
// clients alike.
var (
	kexAlgorithms = []string{
		gossh.KeyExchangeMLKEM768X25519,
		gossh.KeyExchangeCurve25519,
		gossh.KeyExchangeECDHP256,
		gossh.KeyExchangeECDHP384,
		gossh.KeyExchangeECDHP521,
		gossh.KeyExchangeDH14SHA256,
		gossh.KeyExchangeDH16SHA512,
	}
	cipherAlgorithms = []string{
		gossh.CipherAES128GCM,
		gossh.CipherAES256GCM,
		gossh.CipherChaCha20Poly1305,
		gossh.CipherAES128CTR,
		gossh.CipherAES256CTR,
	}
)

// maxSigners bounds the parsed-key cache; past it the cache starts over.
const maxSigners = 4096

type signerResult struct {
	signer gossh.Signer
	err    error
}

// signers caches parsed private keys by a hash of key and passphrase, so a
// fan-out over many hosts sharing a credential parses (and, for encrypted
// keys, runs bcrypt) once.
type signers struct {
	mu sync.Mutex
	m  map[[32]byte]signerResult
}

func (s *signers) get(a Auth) (gossh.Signer, error) {
	h := sha256.New()
	h.Write([]byte(a.PrivateKey.Reveal()))
	h.Write([]byte{0})
	h.Write([]byte(a.Passphrase.Reveal()))
	var key [32]byte
	h.Sum(key[:0])

	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[key]; ok {
		return r.signer, r.err
	}
	var r signerResult
	if a.Passphrase.IsZero() {
		r.signer, r.err = gossh.ParsePrivateKey(a.PrivateKey.Bytes())
	} else {
		r.signer, r.err = gossh.ParsePrivateKeyWithPassphrase(a.PrivateKey.Bytes(), a.Passphrase.Bytes())
	}
	if r.err != nil {
		var missing *gossh.PassphraseMissingError
		if errors.As(r.err, &missing) {
			r.err = fmt.Errorf("%w: key is encrypted and no passphrase is set", ErrPrivateKey)
		} else {
			// x/crypto's parse errors name the problem, never key bytes.
			r.err = fmt.Errorf("%w: %v", ErrPrivateKey, r.err)
		}
	}
	if s.m == nil || len(s.m) >= maxSigners {
		s.m = make(map[[32]byte]signerResult)
	}
	s.m[key] = r
	return r.signer, r.err
}

// hopKey identifies a hop's connection in the pool: address, user, the
// stored host key and policy, and a hash of the credentials (never the
// credentials themselves). A connection is reused only for the exact host
// key it was verified against, so re-pinning a key takes effect at once.
func hopKey(h Hop) string {
	sum := sha256.Sum256([]byte(h.Auth.PrivateKey.Reveal() + "\x00" + h.Auth.Passphrase.Reveal() + "\x00" + h.Auth.Password.Reveal()))
	hostKey := string(h.HostKeyPolicy)
	if f := strings.Fields(h.HostKey); len(f) >= 2 {
		hostKey = f[0] + " " + f[1]
	}
	return fmt.Sprintf("%s@%s#%x#%s", h.User, net.JoinHostPort(strings.ToLower(h.Host), strconv.Itoa(h.port())), sum[:8], hostKey)
}

// dialState records how far a handshake got, to name the failed stage
// without matching error strings.
type dialState struct {
	hostKeyOK  atomic.Bool // the host key was verified: later failures are auth
	hostKeyErr error       // set by the host key callback
	hostKey    string      // the verified (or learned) key, authorized_keys format
	learned    bool        // accepted on first use
	timedOut   atomic.Bool
}

func authorizedKey(k gossh.PublicKey) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}

func fingerprint(k gossh.PublicKey) string { return gossh.FingerprintSHA256(k) }

// hostKeyAlgorithms asks the server for the key type we have stored, so a
// server with several host keys does not present another one and look like
// a changed key.
func hostKeyAlgorithms(k gossh.PublicKey) []string {
	switch k.Type() {
	case gossh.KeyAlgoRSA:
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
	default:
		return []string{k.Type()}
	}
}

func (e *Executor) clientConfig(i int, h Hop, st *dialState) (*gossh.ClientConfig, error) {
	var pinned gossh.PublicKey
	if h.HostKey != "" {
		k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(h.HostKey))
		if err != nil {
			return nil, hopError(i, h, StageHostKey, fmt.Errorf("%w: %v", ErrHostKeyInvalid, err))
		}
		pinned = k
	} else if h.HostKeyPolicy != PolicyTOFU {
		return nil, hopError(i, h, StageHostKey, fmt.Errorf("%w: no host key stored for %s and its policy is %q", ErrHostKeyUnknown, h.label(), PolicyPin))
	}

	var methods []gossh.AuthMethod
	if !h.Auth.PrivateKey.IsZero() {
		signer, err := e.signers.get(h.Auth)
		if err != nil {
			return nil, hopError(i, h, StageAuth, err)
		}
		methods = append(methods, gossh.PublicKeys(signer))
	}
	if !h.Auth.Password.IsZero() {
		pw := h.Auth.Password.Reveal()
		methods = append(methods,
			gossh.Password(pw),
			// PAM-backed servers ask for the password this way: answer a
			// single hidden prompt, refuse anything else (OTP and the like).
			gossh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				switch {
				case len(questions) == 0:
					return nil, nil
				case len(questions) == 1 && !echos[0]:
					return []string{pw}, nil
				}
				return nil, errors.New("ssh: unsupported keyboard-interactive prompts")
			}))
	}
	if len(methods) == 0 {
		return nil, hopError(i, h, StageAuth, ErrNoCredentials)
	}

	cfg := &gossh.ClientConfig{
		User:          h.User,
		Auth:          methods,
		ClientVersion: clientVersion,
		Config:        gossh.Config{KeyExchanges: kexAlgorithms, Ciphers: cipherAlgorithms},
		HostKeyCallback: func(_ string, _ net.Addr, got gossh.PublicKey) error {
			gotText := authorizedKey(got)
			switch {
			case pinned == nil:
				st.learned = true
			case !bytes.Equal(pinned.Marshal(), got.Marshal()):
				st.hostKeyErr = fmt.Errorf("%w: %s presented %s, stored key is %s",
					ErrHostKeyMismatch, h.label(), fingerprint(got), fingerprint(pinned))
				if e.cfg.OnHostKeyMismatch != nil {
					e.cfg.OnHostKeyMismatch(h.ServerID, authorizedKey(pinned), gotText)
				}
				return st.hostKeyErr
			}
			st.hostKey = gotText
			st.hostKeyOK.Store(true)
			return nil
		},
	}
	if pinned != nil {
		cfg.HostKeyAlgorithms = hostKeyAlgorithms(pinned)
	}
	return cfg, nil
}

// errParentDead marks a failure to open a forward through a jump host whose
// own connection is broken (rather than the jump host refusing the forward),
// so the pool can redial the jump host.
var errParentDead = errors.New("ssh: jump host connection broken")

// dialHop connects and authenticates to hop i, directly when parent is nil,
// else through parent. Errors are *HopError.
func (e *Executor) dialHop(ctx context.Context, parent *gossh.Client, i int, h Hop) (*gossh.Client, *dialState, error) {
	st := &dialState{}
	cfg, err := e.clientConfig(i, h, st)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	defer cancel()
	addr := net.JoinHostPort(h.Host, strconv.Itoa(h.port()))

	var conn net.Conn
	if parent == nil {
		conn, err = e.dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			var dnsErr *net.DNSError
			switch {
			case errors.As(err, &dnsErr):
				return nil, nil, hopError(i, h, StageDNS, err)
			case ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded):
				return nil, nil, hopError(i, h, StageTimeout, fmt.Errorf("connect to %s: %w", addr, err))
			}
			return nil, nil, hopError(i, h, StageTCP, err)
		}
	} else {
		conn, err = parent.DialContext(ctx, "tcp", addr)
		if err != nil {
			var openErr *gossh.OpenChannelError
			switch {
			case errors.As(err, &openErr):
				// The jump host tried and failed: refused, unreachable,
				// unresolvable, or forwarding disabled.
				return nil, nil, hopError(i, h, StageTCP, fmt.Errorf("connect to %s via hop %d: %w", addr, i-1, err))
			case ctx.Err() != nil:
				return nil, nil, hopError(i, h, StageTimeout, fmt.Errorf("connect to %s via hop %d: %w", addr, i-1, err))
			}
			return nil, nil, hopError(i, h, StageTCP, fmt.Errorf("%w: %w", errParentDead, err))
		}
	}

	// Tunnelled conns have no deadlines, so bound the handshake by closing
	// the conn instead; this also honours ctx.
	stop := context.AfterFunc(ctx, func() {
		st.timedOut.Store(true)
		conn.Close()
	})
	start := time.Now()
	c, chans, reqs, err := gossh.NewClientConn(conn, addr, cfg)
	stopped := stop()
	if err != nil {
		conn.Close()
		switch {
		case st.hostKeyErr != nil:
			return nil, nil, hopError(i, h, StageHostKey, st.hostKeyErr)
		case !stopped || st.timedOut.Load():
			return nil, nil, hopError(i, h, StageTimeout, fmt.Errorf("handshake with %s: %w", addr, context.Cause(ctx)))
		case st.hostKeyOK.Load():
			return nil, nil, hopError(i, h, StageAuth, err)
		}
		return nil, nil, hopError(i, h, StageHandshake, err)
	}
	client := gossh.NewClient(c, chans, reqs)
	e.log.DebugContext(ctx, "ssh connected", "hop", i, "server_id", h.ServerID, "addr", addr,
		"via_jump", parent != nil, "handshake_ms", time.Since(start).Milliseconds())
	if st.learned && e.cfg.OnHostKeyLearned != nil {
		e.cfg.OnHostKeyLearned(h.ServerID, st.hostKey)
	}
	return client, st, nil
}
