// Package bus carries IT0's events between modules and replicas.
//
// Two kinds of delivery share one Bus:
//
//   - Streams (Publish, Consume) are durable and at least once. Every consumer group sees every message of
//     a stream once, shared among the group's consumers; a message a handler did not acknowledge (it
//     returned an error, or its process died) is handed out again once it has been idle for
//     Config.ClaimIdle, to whichever consumer of the group asks next. Handlers must therefore be
//     idempotent. Streams are trimmed to about Config.MaxLen messages.
//   - Topics (Broadcast, Subscribe) are plain fan-out for live data (session events): every subscriber of
//     every replica gets every message published while it is subscribed, in publish order; nothing is
//     stored, so a subscriber that needs history reads it from the database.
//
// Memory is the embedded default (one process). Redis runs the same contract on Redis Streams and
// pub/sub when IT0_REDIS_URL is set (package redisbus). bustest.Run is the contract suite both pass.
package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Message is one message of a stream, as handed to a Handler.
type Message struct {
	// ID is the bus's id for the message, increasing within a stream.
	ID string
	// Stream is the stream it was published on.
	Stream string
	// Data is the payload as published.
	Data []byte
	// Redelivered is set when the message was handed out before and not acknowledged.
	Redelivered bool
}

// Outgoing is a message to publish.
type Outgoing struct {
	Stream string
	Data   []byte
}

// Handler handles one message. Returning nil acknowledges it; an error leaves it pending, to be handed
// out again after Config.ClaimIdle.
type Handler func(ctx context.Context, m Message) error

// Consumer names one member of a consumer group on a stream.
type Consumer struct {
	Stream string
	Group  string
	// Name identifies the member (e.g. the replica's host name); a restarted process that keeps its name
	// takes its own pending messages back at once.
	Name string
}

// Validate reports a missing field.
func (c Consumer) Validate() error {
	var list []error
	for field, v := range map[string]string{"stream": c.Stream, "group": c.Group, "name": c.Name} {
		if strings.TrimSpace(v) == "" {
			list = append(list, fmt.Errorf("consumer %s is empty", field))
		}
	}
	return errors.Join(list...)
}

// GroupStats describes a consumer group's backlog.
type GroupStats struct {
	// Pending counts messages handed out and not yet acknowledged.
	Pending int64
	// Lag counts messages not yet handed out to the group.
	Lag int64
}

// Bus is the event bus.
type Bus interface {
	// Publish appends data to stream and returns the message id.
	Publish(ctx context.Context, stream string, data []byte) (string, error)
	// PublishBatch appends each message to its stream, in order, in one round trip where the bus allows.
	// On error a prefix of msgs may have been published (the caller publishes them again: at least once).
	PublishBatch(ctx context.Context, msgs []Outgoing) error
	// Consume joins c's group (creating it at the start of the stream if it is new) and handles messages
	// until ctx ends, then returns nil. It returns an error only for an invalid Consumer or a closed bus;
	// a bus that is unreachable for a while is retried.
	Consume(ctx context.Context, c Consumer, h Handler) error
	// Broadcast sends data to every current subscriber of topic, on every replica.
	Broadcast(ctx context.Context, topic string, data []byte) error
	// Subscribe returns a subscription to topic; Close ends it.
	Subscribe(ctx context.Context, topic string) (*Subscription, error)
	// Stats returns the backlog of group on stream (zeros when neither exists yet).
	Stats(ctx context.Context, stream, group string) (GroupStats, error)
	// Len returns how many messages stream holds (after trimming).
	Len(ctx context.Context, stream string) (int64, error)
	// Ping checks the bus is reachable.
	Ping(ctx context.Context) error
	// Close releases the bus; Consume calls return and subscriptions close.
	Close() error
}

// ErrClosed is returned by a closed bus.
var ErrClosed = errors.New("bus closed")

// NewSubscription returns a subscription delivering on c; closing it calls stop (implementations use it).
func NewSubscription(c <-chan []byte, stop func()) *Subscription {
	return &Subscription{C: c, close: stop}
}

// Subscription receives a topic's messages on C, which is closed when the subscription ends. A
// subscriber that falls a whole buffer behind loses messages (counted in Dropped); the payloads of IT0's
// topics carry sequence numbers, so a subscriber notices the gap and reads what it missed from the store.
type Subscription struct {
	C     <-chan []byte
	close func()
}

// Close ends the subscription.
func (s *Subscription) Close() { s.close() }

// Config tunes a bus; zero fields take defaults.
type Config struct {
	// MaxLen is about how many messages a stream keeps (default 100,000). Trimming is approximate.
	MaxLen int64
	// ClaimIdle is how long a message may stay unacknowledged before another consumer of its group takes
	// it over (default 30 s).
	ClaimIdle time.Duration
	// Block is how long one read waits for new messages (default 2 s); it bounds how quickly Consume
	// notices ctx ending on Redis.
	Block time.Duration
	// Batch is how many messages one read takes at most (default 100).
	Batch int
	// SubscriberBuffer is each subscription's buffer (default 4096).
	SubscriberBuffer int
	// Prefix starts every Redis key and channel name (default "it0:"); tests isolate themselves with it.
	Prefix string
	// Metrics, when set, counts what the bus does.
	Metrics *Metrics
}

// SetDefaults fills zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.MaxLen <= 0 {
		c.MaxLen = 100_000
	}
	if c.ClaimIdle <= 0 {
		c.ClaimIdle = 30 * time.Second
	}
	if c.Block <= 0 {
		c.Block = 2 * time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.SubscriberBuffer <= 0 {
		c.SubscriberBuffer = 4096
	}
	if c.Prefix == "" {
		c.Prefix = "it0:"
	}
	if c.Metrics == nil {
		c.Metrics = &Metrics{}
	}
}

// Topics adapts a Bus to consumers that declare topic fan-out with plain types (agent.Fanout): Listen
// is Subscribe returning the channel and the func that ends it.
type Topics struct{ Bus Bus }

// Broadcast sends data to every subscriber of topic.
func (t Topics) Broadcast(ctx context.Context, topic string, data []byte) error {
	return t.Bus.Broadcast(ctx, topic, data)
}

// Listen subscribes to topic.
func (t Topics) Listen(ctx context.Context, topic string) (<-chan []byte, func(), error) {
	s, err := t.Bus.Subscribe(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	return s.C, s.Close, nil
}
