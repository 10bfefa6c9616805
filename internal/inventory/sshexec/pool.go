package sshexec

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// pool holds one connection per chain prefix. A connection to hop n of a
// chain is keyed by the keys of hops 0..n, so targets behind the same jump
// hosts share the jump connections, and each pooled connection keeps its
// parent alive through a reference.
type pool struct {
	e *Executor

	mu    sync.Mutex
	conns map[string]*conn
}

// conn is a pooled connection. Fields other than those marked are set
// before ready is closed and read-only after.
type conn struct {
	key    string
	hop    int
	ready  chan struct{}
	err    error // dial error
	client *gossh.Client
	parent *conn
	// hostKey is the key verified when dialling, authorized_keys format.
	hostKey string
	// sessions bounds concurrent sessions (MaxSessionsPerConn).
	sessions chan struct{}

	// Guarded by pool.mu.
	refs     int // callers holding it plus child connections
	lastUsed time.Time
	dead     bool // removed from the pool; closed when refs reaches 0
}

func newPool(e *Executor) *pool {
	return &pool{e: e, conns: make(map[string]*conn)}
}

// chain is a validated Target with its per-prefix pool keys.
type chain struct {
	hops []Hop
	keys []string // keys[n] identifies hops[0..n]
}

func newChain(t Target) chain {
	c := chain{hops: t.Hops, keys: make([]string, len(t.Hops))}
	var b strings.Builder
	for i, h := range t.Hops {
		if i > 0 {
			b.WriteString(" > ")
		}
		b.WriteString(hopKey(h))
		c.keys[i] = b.String()
	}
	return c
}

// acquire returns a connection to hop n of ch, holding a reference the
// caller gives back with release. reused reports whether it was already in
// the pool. Errors are *HopError or ctx's error.
func (p *pool) acquire(ctx context.Context, ch chain, n int) (c *conn, reused bool, err error) {
	key := ch.keys[n]
	p.mu.Lock()
	c = p.conns[key]
	reused = c != nil
	if c == nil {
		if p.e.ctx.Err() != nil {
			p.mu.Unlock()
			return nil, false, ErrClosed
		}
		c = &conn{key: key, hop: n, ready: make(chan struct{}), sessions: make(chan struct{}, p.e.cfg.MaxSessionsPerConn)}
		p.conns[key] = c
		// The dial outlives this caller's ctx so that other callers
		// waiting on it, and the next command, can use it; it is bounded
		// by DialTimeout per hop and by Close.
		go p.dial(c, ch, n)
	}
	c.refs++
	p.mu.Unlock()

	select {
	case <-c.ready:
	case <-ctx.Done():
		p.release(c)
		return nil, false, ctx.Err()
	}
	if c.err != nil {
		p.release(c)
		return nil, false, c.err
	}
	return c, reused, nil
}

// dial connects c, through its parent connection for n > 0, and closes
// c.ready. A parent whose connection turns out to be broken is evicted and
// redialled once.
func (p *pool) dial(c *conn, ch chain, n int) {
	ctx := p.e.ctx
	var (
		client *gossh.Client
		st     *dialState
		parent *conn
		err    error
	)
	for attempt := 0; ; attempt++ {
		var parentClient *gossh.Client
		if n > 0 {
			var reused bool
			parent, reused, err = p.acquire(ctx, ch, n-1)
			if err != nil {
				break
			}
			parentClient = parent.client
			client, st, err = p.e.dialHop(ctx, parentClient, n, ch.hops[n])
			if err != nil && errors.Is(err, errParentDead) {
				p.kill(parent)
				p.release(parent)
				parent = nil
				if reused && attempt == 0 {
					continue
				}
			}
			break
		}
		client, st, err = p.e.dialHop(ctx, nil, n, ch.hops[n])
		break
	}
	if err != nil {
		if parent != nil {
			p.release(parent)
		}
		if errors.Is(err, context.Canceled) && p.e.ctx.Err() != nil {
			err = ErrClosed
		}
		p.mu.Lock()
		c.err = err
		c.dead = true
		if p.conns[c.key] == c {
			delete(p.conns, c.key)
		}
		p.mu.Unlock()
		close(c.ready)
		return
	}
	c.client, c.parent, c.hostKey = client, parent, st.hostKey
	p.mu.Lock()
	c.lastUsed = time.Now()
	p.mu.Unlock()
	close(c.ready)
	// Evict as soon as the transport dies, so the next command redials
	// instead of finding a dead connection.
	go func() {
		_ = client.Wait()
		p.kill(c)
	}()
}

// release gives back a reference from acquire.
func (p *pool) release(c *conn) {
	p.mu.Lock()
	c.refs--
	c.lastUsed = time.Now()
	finalize := c.refs == 0 && (c.dead || p.e.cfg.PoolIdleTimeout < 0)
	if finalize && !c.dead {
		c.dead = true
		if p.conns[c.key] == c {
			delete(p.conns, c.key)
		}
	}
	p.mu.Unlock()
	if finalize {
		p.finalize(c)
	}
}

// kill removes c from the pool and closes its connection, which also ends
// the sessions and forwards on it. Holders still release it.
func (p *pool) kill(c *conn) {
	p.mu.Lock()
	wasDead := c.dead
	c.dead = true
	if p.conns[c.key] == c {
		delete(p.conns, c.key)
	}
	unused := c.refs == 0
	p.mu.Unlock()
	if c.client != nil {
		c.client.Close()
	}
	if unused && !wasDead {
		p.finalize(c)
	}
}

// finalize closes a dead, unreferenced connection and drops its reference on
// its parent. It runs once per conn: callers hand over only on the
// transition to dead with no references.
func (p *pool) finalize(c *conn) {
	if c.client != nil {
		c.client.Close()
	}
	if c.parent != nil {
		p.release(c.parent)
	}
}

// sweep closes connections idle for longer than the idle timeout and sends
// keepalives on the others, evicting those that do not answer. It runs on
// the janitor goroutine.
func (p *pool) sweep(now time.Time) {
	idle := p.e.cfg.PoolIdleTimeout
	var expired, alive []*conn
	p.mu.Lock()
	for key, c := range p.conns {
		select {
		case <-c.ready:
		default:
			continue // dialling
		}
		if c.refs == 0 && now.Sub(c.lastUsed) >= idle {
			c.dead = true
			delete(p.conns, key)
			expired = append(expired, c)
			continue
		}
		if c.refs == 0 {
			alive = append(alive, c)
		}
	}
	p.mu.Unlock()
	for _, c := range expired {
		p.e.log.Debug("ssh pool evict idle", "hop", c.hop)
		p.finalize(c)
	}
	if p.e.cfg.KeepAlive < 0 {
		return
	}
	// Keepalives go out concurrently, a bounded number at a time, each
	// bounded by DialTimeout: one slow server must not stall the sweep.
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, c := range alive {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if !keepAlive(c.client, p.e.cfg.DialTimeout) {
				p.e.log.Debug("ssh pool evict unresponsive", "hop", c.hop)
				p.kill(c)
			}
		})
	}
	wg.Wait()
}

// keepAlive sends an OpenSSH keepalive request and reports whether the
// server answered in time (any answer, including a refusal, proves it alive).
func keepAlive(c *gossh.Client, timeout time.Duration) bool {
	done := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err == nil
	case <-t.C:
		return false
	}
}

// closeAll closes every pooled connection.
func (p *pool) closeAll() {
	p.mu.Lock()
	all := make([]*conn, 0, len(p.conns))
	for key, c := range p.conns {
		all = append(all, c)
		delete(p.conns, key)
		c.dead = true
	}
	p.mu.Unlock()
	for _, c := range all {
		select {
		case <-c.ready:
			if c.client != nil {
				c.client.Close()
			}
		default:
		}
	}
}

// Stats reports the pooled connections: open ones (dialled, still usable) and how many of those are in
// use by a command or as a jump for another connection. IT0 exports them as it0_ssh_connections.
func (e *Executor) Stats() (open, inUse int) {
	p := e.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		select {
		case <-c.ready:
		default:
			continue // dialling
		}
		if c.client == nil || c.dead {
			continue
		}
		open++
		if c.refs > 0 {
			inUse++
		}
	}
	return open, inUse
}
