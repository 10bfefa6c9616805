package sshexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// killGrace is how long a killed command's session may take to close before
// the executor closes the whole connection to unblock it.
const killGrace = 5 * time.Second

// Executor runs commands over SSH, pooling connections. It is safe for
// concurrent use. Close it to close the pool.
type Executor struct {
	cfg     Config
	log     *slog.Logger
	dialer  net.Dialer
	signers signers
	pool    *pool

	ctx    context.Context // cancelled by Close; bounds background dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // the janitor
}

// New returns an Executor. It starts a janitor goroutine that sends
// keepalives and evicts idle connections until Close.
func New(cfg Config) *Executor {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	e := &Executor{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "ssh"),
		dialer: net.Dialer{KeepAlive: 30 * time.Second},
		ctx:    ctx,
		cancel: cancel,
	}
	e.pool = newPool(e)
	if cfg.PoolIdleTimeout > 0 {
		interval := cfg.PoolIdleTimeout
		if cfg.KeepAlive > 0 {
			interval = min(interval, cfg.KeepAlive)
		}
		e.wg.Go(func() { e.janitor(interval) })
	}
	return e
}

func (e *Executor) janitor(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case now := <-t.C:
			e.pool.sweep(now)
		}
	}
}

// Close closes every pooled connection and stops the janitor. Commands
// still running fail; later calls return ErrClosed.
func (e *Executor) Close() error {
	e.cancel()
	e.wg.Wait()
	e.pool.closeAll()
	return nil
}

// Run runs cmd on t's last hop, through the others. It returns a
// *HopError if a hop cannot be reached, ErrTimeout (with TimedOut set) when
// cmd.Timeout expires, ctx's error when ctx ends first, and
// ErrConnectionLost if the connection dies mid-command. A non-zero exit
// status is not an error: see Result.ExitCode.
//
// A pooled connection found dead is evicted and the command retried once
// on a fresh one.
func (e *Executor) Run(ctx context.Context, t Target, cmd Command) (Result, error) {
	if err := validate(t, e.cfg.MaxDepth); err != nil {
		return Result{ExitCode: -1}, err
	}
	if e.ctx.Err() != nil {
		return Result{ExitCode: -1}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return Result{ExitCode: -1}, err
	}
	ch := newChain(t)
	last := len(t.Hops) - 1
	for attempt := 0; ; attempt++ {
		c, reused, err := e.pool.acquire(ctx, ch, last)
		if err != nil {
			return Result{ExitCode: -1}, err
		}
		res, started, err := e.runOn(ctx, c, t.Hops[last], last, cmd)
		if err != nil && !started && reused && attempt == 0 && errors.Is(err, errConnDead) {
			// The pooled connection died while idle; the command never
			// reached the server, so running it again is safe.
			e.log.DebugContext(ctx, "ssh pooled connection dead, redialling", "server_id", t.Hops[last].ServerID)
			e.pool.kill(c)
			e.pool.release(c)
			continue
		}
		if errors.Is(err, errConnDead) {
			e.pool.kill(c)
		}
		e.pool.release(c)
		return res, err
	}
}

// errConnDead marks errors caused by a broken connection (not a refusal by
// the server).
var errConnDead = errors.New("ssh: connection dead")

// runOn runs cmd in a new session on c. started reports whether the command
// was sent to the server.
func (e *Executor) runOn(ctx context.Context, c *conn, h Hop, hop int, cmd Command) (res Result, started bool, err error) {
	res.ExitCode = -1
	select {
	case c.sessions <- struct{}{}:
	case <-ctx.Done():
		return res, false, ctx.Err()
	}
	defer func() { <-c.sessions }()

	sess, err := e.newSession(c)
	if err != nil {
		return res, false, hopError(hop, h, StageSession, err)
	}
	defer sess.Close()
	if err := ctx.Err(); err != nil {
		return res, false, err
	}
	stdin, err1 := sess.StdinPipe()
	stdout, err2 := sess.StdoutPipe()
	stderr, err3 := sess.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		return res, false, fmt.Errorf("ssh: session pipes: %w", err)
	}

	start := time.Now()
	if err := sess.Start(wrapCommand(cmd.Cmd)); err != nil {
		// Start fails only when the request cannot be sent or the server
		// refuses exec; either way the command did not run.
		return res, false, hopError(hop, h, StageSession, fmt.Errorf("%w: start command: %w", errConnDead, err))
	}

	var (
		timedOut  atomic.Bool
		cancelled atomic.Bool
		finished  = make(chan struct{})
		killOnce  sync.Once
	)
	kill := func() {
		killOnce.Do(func() {
			// Belt and braces: OpenSSH kills the session's process group on
			// a signal request; closing stdin makes the wrapper's watcher
			// kill it on servers that ignore signals; closing the session
			// releases our side. If the session does not wind down, the
			// connection itself is closed.
			_ = sess.Signal(gossh.SIGKILL)
			_ = stdin.Close()
			_ = sess.Close()
			time.AfterFunc(killGrace, func() {
				select {
				case <-finished:
				default:
					e.pool.kill(c)
				}
			})
		})
	}
	if cmd.Timeout > 0 {
		timer := time.AfterFunc(cmd.Timeout, func() {
			timedOut.Store(true)
			kill()
		})
		defer timer.Stop()
	}
	stopCtx := context.AfterFunc(ctx, func() {
		cancelled.Store(true)
		kill()
	})
	defer stopCtx()

	limit := cmd.MaxOutputBytes
	if limit <= 0 {
		limit = e.cfg.MaxOutputBytes
	}
	var (
		errOut collector
		wg     sync.WaitGroup
	)
	wg.Go(func() { errOut.collect(stderr, StreamStderr, limit, cmd.OnLine) })
	var out collector
	out.collect(stdout, StreamStdout, limit, cmd.OnLine)
	wg.Wait()
	waitErr := sess.Wait()
	close(finished)
	res.Duration = time.Since(start)
	res.Stdout, res.Stderr = string(out.buf), string(errOut.buf)
	res.Truncated = out.truncated || errOut.truncated

	var exitErr *gossh.ExitError
	switch {
	case timedOut.Load():
		res.TimedOut = true
		return res, true, fmt.Errorf("%w after %v", ErrTimeout, cmd.Timeout)
	case cancelled.Load():
		res.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		return res, true, ctx.Err()
	case waitErr == nil:
		res.ExitCode = 0
	case errors.As(waitErr, &exitErr):
		res.ExitCode = exitErr.ExitStatus()
	default:
		// No exit status: the session or connection went away mid-command.
		return res, true, fmt.Errorf("%w: %w: %w", ErrConnectionLost, errConnDead, waitErr)
	}
	return res, true, nil
}

// newSession opens a session on c. A connection that does not answer within
// DialTimeout is closed, which fails the request.
func (e *Executor) newSession(c *conn) (*gossh.Session, error) {
	t := time.AfterFunc(e.cfg.DialTimeout, func() { e.pool.kill(c) })
	sess, err := c.client.NewSession()
	t.Stop()
	if err != nil {
		var openErr *gossh.OpenChannelError
		if errors.As(err, &openErr) {
			// The server is alive and refused (MaxSessions, for example).
			return nil, fmt.Errorf("new session: %w", err)
		}
		return nil, fmt.Errorf("%w: new session: %w", errConnDead, err)
	}
	return sess, nil
}

// collector gathers one output stream up to a limit, passing complete lines
// to a callback.
type collector struct {
	buf       []byte
	truncated bool
}

func (c *collector) collect(r io.Reader, stream string, limit int, onLine func(stream, line string)) {
	chunk := make([]byte, 8<<10) // one SSH packet is at most 32 KiB; most output is far less
	lineStart := 0               // start in buf of the current partial line
	for {
		n, err := r.Read(chunk)
		if n > 0 && !c.truncated {
			data := chunk[:n]
			if room := limit - len(c.buf); len(data) > room {
				data = data[:room]
				c.truncated = true
			}
			c.buf = append(c.buf, data...)
			if onLine != nil {
				for {
					i := indexNL(c.buf[lineStart:])
					if i < 0 {
						break
					}
					onLine(stream, string(c.buf[lineStart:lineStart+i]))
					lineStart += i + 1
				}
				if c.truncated && lineStart < len(c.buf) {
					// The cap cut a line: deliver what was kept of it.
					onLine(stream, string(c.buf[lineStart:]))
					lineStart = len(c.buf)
				}
			}
		}
		if err != nil {
			if onLine != nil && lineStart < len(c.buf) {
				onLine(stream, string(c.buf[lineStart:]))
			}
			return
		}
	}
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// wrapCommand makes the remote command die when its session's stdin closes.
//
// sshd runs it with the login shell as `$SHELL -c <wrapped>` in a new
// session (setsid), so the shell's pid is the process group id. The prefix
// moves stdin to fd 3 (the command gets /dev/null, as with `ssh -n`) and
// starts a background watcher that reads fd 3 until EOF. The executor never
// writes to stdin, so EOF comes only when the executor closes stdin or the
// session, or the connection drops; if the shell ($$) is still running then,
// the watcher kills the whole process group. After a normal exit the shell
// is gone and the watcher leaves any background processes alone, as ssh
// would. The watcher closes stdout and stderr so it never holds the session
// open.
func wrapCommand(cmd string) string {
	return `exec 3<&0 </dev/null; { while read -r _ <&3; do :; done; kill -0 $$ && kill -9 0; } >/dev/null 2>&1 & exec 3<&-
` + cmd
}
