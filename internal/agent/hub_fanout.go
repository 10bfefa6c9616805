package agent

import (
	"bytes"
	"context"
	"errors"
	"strconv"
)

// Fanout carries live messages between replicas: the bus's topics (bus.Topics), declared here with
// plain types so the agent does not depend on the bus.
type Fanout interface {
	Broadcast(ctx context.Context, topic string, data []byte) error
	Listen(ctx context.Context, topic string) (msgs <-chan []byte, stop func(), err error)
}

// hubTopic carries every session's live events between replicas.
const hubTopic = "agent.session-events"

// fanout is a hub's link to the other replicas.
type fanout struct {
	f      Fanout
	origin string
	out    chan []byte // frames to broadcast, in publish order
	stop   func()
	done   chan struct{}
}

// Connect links the hub to the other replicas through f: every event published here is broadcast, and
// events of sessions running on other replicas reach this replica's subscribers, in order. origin names
// this replica (frames it sent itself come back and are skipped). Frames are broadcast by one goroutine,
// in order, so a slow or unreachable bus never blocks a session; when its buffer is full, frames are
// dropped and remote subscribers fill the gap from the store (they see it in the sequence numbers).
func (h *Hub) Connect(ctx context.Context, f Fanout, origin string) error {
	if origin == "" {
		return errors.New("connect hub: empty origin")
	}
	msgs, stop, err := f.Listen(ctx, hubTopic)
	if err != nil {
		return err
	}
	fo := &fanout{f: f, origin: origin, out: make(chan []byte, 8192), stop: stop, done: make(chan struct{})}
	h.mu.Lock()
	h.fan = fo
	h.mu.Unlock()
	go func() {
		for b := range fo.out {
			// A broadcast that fails is lost to the other replicas; their subscribers read the store.
			_ = f.Broadcast(context.Background(), hubTopic, b)
		}
		close(fo.done)
	}()
	go func() {
		for b := range msgs {
			o, sid, m, ok := decodeFrame(b)
			if ok && o != origin {
				h.deliver(sid, m)
			}
		}
	}()
	return nil
}

// Disconnect stops relaying to and from other replicas, after broadcasting what is queued.
func (h *Hub) Disconnect() {
	h.mu.Lock()
	fo := h.fan
	h.fan = nil
	h.mu.Unlock()
	if fo != nil {
		close(fo.out)
		<-fo.done
		fo.stop()
	}
}

// encodeFrame is origin, session id, seq and the event's JSON, separated by newlines (none of the first
// three holds one; the JSON is last).
func encodeFrame(origin, sessionID string, m Message) []byte {
	b := make([]byte, 0, len(origin)+len(sessionID)+len(m.JSON)+24)
	b = append(append(b, origin...), '\n')
	b = append(append(b, sessionID...), '\n')
	b = append(strconv.AppendInt(b, m.Seq, 10), '\n')
	return append(b, m.JSON...)
}

func decodeFrame(b []byte) (origin, sessionID string, m Message, ok bool) {
	parts := bytes.SplitN(b, []byte{'\n'}, 4)
	if len(parts) != 4 {
		return "", "", Message{}, false
	}
	seq, err := strconv.ParseInt(string(parts[2]), 10, 64)
	if err != nil {
		return "", "", Message{}, false
	}
	return string(parts[0]), string(parts[1]), Message{Seq: seq, JSON: parts[3]}, true
}
