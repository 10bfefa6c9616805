package bus

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Memory is the in-process bus of a single IT0 process (the embedded default). It keeps streams and
// consumer groups in memory with the same semantics as Redis: it survives no restart, which is why
// durable facts go through the outbox first.
type Memory struct {
	cfg Config

	mu      sync.Mutex
	streams map[string]*memStream
	topics  map[string]map[*memSub]struct{}
	closed  chan struct{}
}

type memStream struct {
	first   int64 // sequence number of entries[0]
	entries [][]byte
	groups  map[string]*memGroup
	wake    chan struct{} // closed (and replaced) when a message arrives
}

type memGroup struct {
	next    int64 // next sequence number to hand out
	pending map[int64]*memPending
}

type memPending struct {
	consumer string
	since    time.Time
}

type memSub struct {
	ch   chan []byte
	once sync.Once
}

var _ Bus = (*Memory)(nil)

// NewMemory returns an in-process bus.
func NewMemory(cfg Config) *Memory {
	cfg.SetDefaults()
	return &Memory{cfg: cfg, streams: map[string]*memStream{}, topics: map[string]map[*memSub]struct{}{}, closed: make(chan struct{})}
}

func (b *Memory) isClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}

// stream returns stream name, creating it; b.mu must be held.
func (b *Memory) stream(name string) *memStream {
	s := b.streams[name]
	if s == nil {
		s = &memStream{first: 1, groups: map[string]*memGroup{}, wake: make(chan struct{})}
		b.streams[name] = s
	}
	return s
}

func memID(seq int64) string { return strconv.FormatInt(seq, 10) + "-0" }

// Publish implements Bus.
func (b *Memory) Publish(_ context.Context, stream string, data []byte) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed() {
		return "", ErrClosed
	}
	s := b.stream(stream)
	s.entries = append(s.entries, append([]byte(nil), data...))
	seq := s.first + int64(len(s.entries)) - 1
	// Like MAXLEN ~ on Redis, trim in steps of a tenth, so a full stream does not copy itself on every publish.
	if over := int64(len(s.entries)) - b.cfg.MaxLen; over > b.cfg.MaxLen/10 {
		s.entries = append(s.entries[:0:0], s.entries[over:]...)
		s.first += over
	}
	close(s.wake)
	s.wake = make(chan struct{})
	b.cfg.Metrics.Published(1, stream)
	return memID(seq), nil
}

// PublishBatch implements Bus.
func (b *Memory) PublishBatch(ctx context.Context, msgs []Outgoing) error {
	for _, m := range msgs {
		if _, err := b.Publish(ctx, m.Stream, m.Data); err != nil {
			return err
		}
	}
	return nil
}

// Consume implements Bus.
func (b *Memory) Consume(ctx context.Context, c Consumer, h Handler) error {
	if err := c.Validate(); err != nil {
		return err
	}
	own := true // first take back what this consumer name left pending
	for {
		if ctx.Err() != nil {
			return nil
		}
		msgs, wake, wait, err := b.take(c, own)
		if err != nil {
			return err
		}
		own = false
		for _, m := range msgs {
			if err := h(ctx, m); err != nil {
				b.cfg.Metrics.Failed(1, c.Stream, c.Group)
				continue
			}
			b.ack(c, m.ID)
		}
		if len(msgs) > 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-b.closed:
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// take hands out up to Batch messages to c: pending ones idle for ClaimIdle (or c's own, when own is
// set), then new ones. With nothing to hand out it returns the channel that signals a new message and
// how long until a pending one may be claimed.
func (b *Memory) take(c Consumer, own bool) ([]Message, <-chan struct{}, time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed() {
		return nil, nil, 0, ErrClosed
	}
	s := b.stream(c.Stream)
	g := s.groups[c.Group]
	if g == nil {
		g = &memGroup{next: s.first, pending: map[int64]*memPending{}}
		s.groups[c.Group] = g
	}
	now := time.Now()
	var msgs []Message
	wait := b.cfg.ClaimIdle
	// Pending entries are few; walking them in sequence order keeps redelivery in order.
	for _, seq := range slices.Sorted(maps.Keys(g.pending)) {
		p := g.pending[seq]
		if seq < s.first { // trimmed away while pending: gone, as on Redis
			delete(g.pending, seq)
			continue
		}
		idle := now.Sub(p.since)
		if !(own && p.consumer == c.Name) && idle < b.cfg.ClaimIdle {
			wait = min(wait, b.cfg.ClaimIdle-idle)
			continue
		}
		if len(msgs) == b.cfg.Batch {
			break
		}
		if p.consumer != c.Name || !own {
			b.cfg.Metrics.Reclaimed(1, c.Stream, c.Group)
		}
		p.consumer, p.since = c.Name, now
		msgs = append(msgs, Message{ID: memID(seq), Stream: c.Stream, Data: s.entries[seq-s.first], Redelivered: true})
	}
	if g.next < s.first {
		g.next = s.first
	}
	for ; len(msgs) < b.cfg.Batch && g.next < s.first+int64(len(s.entries)); g.next++ {
		g.pending[g.next] = &memPending{consumer: c.Name, since: now}
		msgs = append(msgs, Message{ID: memID(g.next), Stream: c.Stream, Data: s.entries[g.next-s.first]})
	}
	return msgs, s.wake, max(wait, time.Millisecond), nil
}

func (b *Memory) ack(c Consumer, id string) {
	seq, _ := strconv.ParseInt(id[:len(id)-2], 10, 64)
	b.mu.Lock()
	defer b.mu.Unlock()
	if g := b.stream(c.Stream).groups[c.Group]; g != nil {
		if _, ok := g.pending[seq]; ok {
			delete(g.pending, seq)
			b.cfg.Metrics.Handled(1, c.Stream, c.Group)
		}
	}
}

// Broadcast implements Bus.
func (b *Memory) Broadcast(_ context.Context, topic string, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed() {
		return ErrClosed
	}
	for s := range b.topics[topic] {
		select {
		case s.ch <- data:
		default:
			b.cfg.Metrics.Dropped(1, topic)
		}
	}
	return nil
}

// Subscribe implements Bus.
func (b *Memory) Subscribe(_ context.Context, topic string) (*Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed() {
		return nil, ErrClosed
	}
	s := &memSub{ch: make(chan []byte, b.cfg.SubscriberBuffer)}
	if b.topics[topic] == nil {
		b.topics[topic] = map[*memSub]struct{}{}
	}
	b.topics[topic][s] = struct{}{}
	return NewSubscription(s.ch, func() {
		b.mu.Lock()
		delete(b.topics[topic], s)
		b.mu.Unlock()
		s.once.Do(func() { close(s.ch) })
	}), nil
}

// Stats implements Bus.
func (b *Memory) Stats(_ context.Context, stream, group string) (GroupStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.streams[stream]
	if s == nil || s.groups[group] == nil {
		return GroupStats{}, nil
	}
	g := s.groups[group]
	return GroupStats{Pending: int64(len(g.pending)), Lag: max(0, s.first+int64(len(s.entries))-max(g.next, s.first))}, nil
}

// Len implements Bus.
func (b *Memory) Len(_ context.Context, stream string) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.streams[stream]; s != nil {
		return int64(len(s.entries)), nil
	}
	return 0, nil
}

// Ping implements Bus.
func (b *Memory) Ping(context.Context) error {
	if b.isClosed() {
		return ErrClosed
	}
	return nil
}

// Close implements Bus.
func (b *Memory) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed() {
		return nil
	}
	close(b.closed)
	for _, subs := range b.topics {
		for s := range subs {
			s.once.Do(func() { close(s.ch) })
		}
	}
	b.topics = nil
	return nil
}
