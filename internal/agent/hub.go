package agent

import (
	"encoding/json"
	"sync"

	"github.com/it0/it0/internal/agent/agentapi"
)

// Hub fans a session's events out to live subscribers (WebSocket clients). Each event is marshalled once
// and handed to every subscriber's buffered channel; a subscriber that falls behind by a whole buffer is
// dropped (its channel closed) rather than slowing the session, and reconnects with ?after=SEQ to replay
// from the store.
type Hub struct {
	mu   sync.RWMutex
	subs map[string]map[*Subscription]struct{} // session id → subscribers
	buf  int
	fan  *fanout // other replicas (Connect); nil in a single process
}

// Message is one published event (agentapi.Message).
type Message = agentapi.Message

// Subscription receives one session's events.
type Subscription struct {
	C         chan Message
	sessionID string
	closeOnce sync.Once
}

// NewHub returns a hub whose subscribers buffer up to buf events.
func NewHub(buf int) *Hub {
	if buf <= 0 {
		buf = 1024
	}
	return &Hub{subs: map[string]map[*Subscription]struct{}{}, buf: buf}
}

// Subscribe registers a subscriber to sessionID's events.
func (h *Hub) Subscribe(sessionID string) *Subscription {
	s := &Subscription{C: make(chan Message, h.buf), sessionID: sessionID}
	h.mu.Lock()
	if h.subs[sessionID] == nil {
		h.subs[sessionID] = map[*Subscription]struct{}{}
	}
	h.subs[sessionID][s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Unsubscribe removes s and closes its channel.
func (h *Hub) Unsubscribe(s *Subscription) {
	h.mu.Lock()
	if m := h.subs[s.sessionID]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.sessionID)
		}
	}
	h.mu.Unlock()
	s.closeOnce.Do(func() { close(s.C) })
}

// Publish sends e to e.SessionID's subscribers, on this replica and (once connected) on the others,
// without blocking.
func (h *Hub) Publish(e Event) {
	h.mu.RLock()
	idle := len(h.subs[e.SessionID]) == 0 && h.fan == nil
	h.mu.RUnlock()
	if idle {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	m := Message{Seq: e.Seq, JSON: b}
	h.mu.RLock() // held while sending: Disconnect closes fan.out under the write lock
	if fan := h.fan; fan != nil {
		select {
		case fan.out <- encodeFrame(fan.origin, e.SessionID, m):
		default: // remote subscribers see the gap in seq and read the store
		}
	}
	h.mu.RUnlock()
	h.deliver(e.SessionID, m)
}

// deliver hands m to sessionID's subscribers on this replica.
func (h *Hub) deliver(sessionID string, m Message) {
	h.mu.RLock()
	subs := h.subs[sessionID]
	if len(subs) == 0 {
		h.mu.RUnlock()
		return
	}
	var slow []*Subscription
	for s := range subs {
		select {
		case s.C <- m:
		default:
			slow = append(slow, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range slow {
		h.Unsubscribe(s)
	}
}

// Subscribers counts the live subscribers of sessionID.
func (h *Hub) Subscribers(sessionID string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs[sessionID])
}

// Follow subscribes to the live events of session sessionID (this replica's hub, which the other
// replicas feed) until stop is called. The channel closes when the follower falls a whole buffer behind.
func (s *Service) Follow(sessionID string) (events <-chan Message, stop func()) {
	sub := s.hub.Subscribe(sessionID)
	return sub.C, func() { s.hub.Unsubscribe(sub) }
}
