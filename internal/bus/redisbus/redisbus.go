// Package redisbus is the bus of a deployment with several replicas or split targets (IT0_REDIS_URL):
// streams are Redis Streams with consumer groups (XREADGROUP, XACK, XAUTOCLAIM, XADD MAXLEN ~), topics are
// Redis pub/sub channels.
package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/redis/go-redis/v9"
)

// Bus is a bus.Bus on Redis.
//
// A stream outlives a Redis restart only if Redis persists it (appendonly yes, as deploy/ configures it).
// The outbox covers the rest: a fact is only removed from the outbox once XADD has returned, so nothing
// the database committed is lost while Redis is down; it is published when Redis is back.
type Bus struct {
	cfg bus.Config
	rdb *redis.Client

	ctx    context.Context // ends at Close: stops subscriptions' goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ bus.Bus = (*Bus)(nil)

// New connects to the Redis at url (redis://[user:password@]host:port/db, or rediss:// for TLS).
// It does not wait for Redis to answer: Ping does.
func New(url string, cfg bus.Config) (*Bus, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: name the setting, not its value.
		return nil, fmt.Errorf("IT0_REDIS_URL is not a redis:// URL (redis://[:password@]host:6379/0)")
	}
	cfg.SetDefaults()
	// The reads that wait for new messages must not time out before Redis answers them.
	opt.ReadTimeout = max(opt.ReadTimeout, cfg.Block+3*time.Second)
	b := &Bus{cfg: cfg, rdb: redis.NewClient(opt)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

func (b *Bus) key(name string) string { return b.cfg.Prefix + name }

// Publish implements Bus.
func (b *Bus) Publish(ctx context.Context, stream string, data []byte) (string, error) {
	id, err := b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: b.key(stream), MaxLen: b.cfg.MaxLen, Approx: true, Values: []any{"d", data}}).Result()
	if err != nil {
		return "", b.wrap("publish", err)
	}
	b.cfg.Metrics.Published(1, stream)
	return id, nil
}

// PublishBatch implements bus.Bus with one pipeline of XADDs.
func (b *Bus) PublishBatch(ctx context.Context, msgs []bus.Outgoing) error {
	if len(msgs) == 0 {
		return nil
	}
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			p.XAdd(ctx, &redis.XAddArgs{Stream: b.key(m.Stream), MaxLen: b.cfg.MaxLen, Approx: true, Values: []any{"d", m.Data}})
		}
		return nil
	})
	if err != nil {
		return b.wrap("publish", err)
	}
	for _, m := range msgs {
		b.cfg.Metrics.Published(1, m.Stream)
	}
	return nil
}

func (b *Bus) wrap(op string, err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return bus.ErrClosed
	}
	return fmt.Errorf("redis %s: %w", op, err)
}

func (b *Bus) ensureGroup(ctx context.Context, c bus.Consumer) error {
	err := b.rdb.XGroupCreateMkStream(ctx, b.key(c.Stream), c.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	return nil
}

// Consume implements Bus. It alternates XREADGROUP of new messages with an XAUTOCLAIM pass every half
// ClaimIdle, and starts by taking back the messages its own name left pending.
func (b *Bus) Consume(ctx context.Context, c bus.Consumer, h bus.Handler) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var (
		own       = true
		grouped   = false
		cursor    = "0-0"
		nextClaim time.Time
		backoff   time.Duration
	)
	key := b.key(c.Stream)
	for {
		if ctx.Err() != nil || b.ctx.Err() != nil {
			return nil
		}
		var (
			msgs      []redis.XMessage
			reclaimed bool
			err       error
		)
		switch {
		case !grouped:
			err = b.ensureGroup(ctx, c)
			grouped = err == nil
		case own:
			// Once: what this name left pending beyond one batch is claimed by XAUTOCLAIM in due course.
			msgs, err = b.read(ctx, c, "0", -1)
			own = err != nil
			reclaimed = true
		case !time.Now().Before(nextClaim):
			var next string
			msgs, next, err = b.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: key, Group: c.Group, Consumer: c.Name,
				MinIdle: b.cfg.ClaimIdle, Start: cursor, Count: int64(b.cfg.Batch)}).Result()
			if err == nil {
				cursor, reclaimed = next, true
				if next == "0-0" {
					nextClaim = time.Now().Add(b.cfg.ClaimIdle / 2)
				}
				b.cfg.Metrics.Reclaimed(len(msgs), c.Stream, c.Group)
			}
		default:
			msgs, err = b.read(ctx, c, ">", min(b.cfg.Block, max(time.Until(nextClaim), time.Millisecond)))
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			if ctx.Err() != nil || b.ctx.Err() != nil {
				return nil
			}
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				grouped = false // Redis lost the group (restarted without persistence): create it again
			}
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			if !sleep(ctx, backoff) {
				return nil
			}
			continue
		}
		backoff = 0
		for _, x := range msgs {
			data, _ := x.Values["d"].(string)
			if err := h(ctx, bus.Message{ID: x.ID, Stream: c.Stream, Data: []byte(data), Redelivered: reclaimed}); err != nil {
				b.cfg.Metrics.Failed(1, c.Stream, c.Group)
				continue
			}
			if err := b.rdb.XAck(context.WithoutCancel(ctx), key, c.Group, x.ID).Err(); err == nil {
				b.cfg.Metrics.Handled(1, c.Stream, c.Group)
			}
			// An ack that fails leaves the message pending: it is handled again (at least once).
		}
	}
}

// read runs XREADGROUP from id ("0": this consumer's pending history; ">": new messages), blocking for
// block (negative: not at all).
func (b *Bus) read(ctx context.Context, c bus.Consumer, id string, block time.Duration) ([]redis.XMessage, error) {
	res, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: c.Group, Consumer: c.Name, Streams: []string{b.key(c.Stream), id},
		Count: int64(b.cfg.Batch), Block: block}).Result()
	if err != nil || len(res) == 0 {
		return nil, err
	}
	return res[0].Messages, nil
}

// sleep waits d or until ctx ends, and reports whether it waited the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Broadcast implements Bus.
func (b *Bus) Broadcast(ctx context.Context, topic string, data []byte) error {
	if err := b.rdb.Publish(ctx, b.key(topic), data).Err(); err != nil {
		return b.wrap("broadcast", err)
	}
	return nil
}

// Subscribe implements Bus. It returns once Redis has confirmed the subscription, so every later
// Broadcast reaches it. go-redis re-subscribes after a lost connection; what was broadcast meanwhile is
// missed (subscribers detect the gap by sequence number).
func (b *Bus) Subscribe(ctx context.Context, topic string) (*bus.Subscription, error) {
	if b.ctx.Err() != nil {
		return nil, bus.ErrClosed
	}
	ps := b.rdb.Subscribe(ctx, b.key(topic))
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, b.wrap("subscribe", err)
	}
	ch := make(chan []byte, b.cfg.SubscriberBuffer)
	done := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(done); ps.Close() }) }
	in := ps.Channel(redis.WithChannelSize(b.cfg.SubscriberBuffer))
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(ch)
		defer stop()
		for {
			select {
			case <-done:
				return
			case <-b.ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				select {
				case ch <- []byte(m.Payload):
				default:
					b.cfg.Metrics.Dropped(1, topic)
				}
			}
		}
	}()
	return bus.NewSubscription(ch, stop), nil
}

// Stats implements Bus (XINFO GROUPS; lag needs Redis 7).
func (b *Bus) Stats(ctx context.Context, stream, group string) (bus.GroupStats, error) {
	groups, err := b.rdb.XInfoGroups(ctx, b.key(stream)).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return bus.GroupStats{}, nil
		}
		return bus.GroupStats{}, b.wrap("stats", err)
	}
	for _, g := range groups {
		if g.Name == group {
			return bus.GroupStats{Pending: g.Pending, Lag: max(g.Lag, 0)}, nil
		}
	}
	return bus.GroupStats{}, nil
}

// Len implements Bus.
func (b *Bus) Len(ctx context.Context, stream string) (int64, error) {
	n, err := b.rdb.XLen(ctx, b.key(stream)).Result()
	if err != nil {
		return 0, b.wrap("xlen", err)
	}
	return n, nil
}

// Ping implements Bus.
func (b *Bus) Ping(ctx context.Context) error {
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return b.wrap("ping", err)
	}
	return nil
}

// Client is the underlying Redis client, for the replica registry and tests.
func (b *Bus) Client() *redis.Client { return b.rdb }

// Close implements Bus.
func (b *Bus) Close() error {
	b.cancel()
	err := b.rdb.Close()
	b.wg.Wait()
	if errors.Is(err, redis.ErrClosed) {
		return nil
	}
	return err
}
