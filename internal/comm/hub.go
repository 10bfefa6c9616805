package comm

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
)

// Hub is the in-app push channel: it fans messages out to the WebSocket clients (/ws/comm) of a user. A
// client that falls a whole buffer behind is dropped (its channel closed) rather than slowing the sender.
type Hub struct {
	mu   sync.RWMutex
	subs map[string]map[*Subscription]struct{} // tenant/user → subscribers
	seq  atomic.Int64
}

// Subscription receives one user's in-app messages, as JSON.
type Subscription struct {
	C    chan []byte
	key  string
	once sync.Once
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[string]map[*Subscription]struct{}{}} }

func hubKey(tenantID, userID string) string { return tenantID + "/" + userID }

// Subscribe registers a client of user userID in tenantID.
func (h *Hub) Subscribe(tenantID, userID string) *Subscription {
	s := &Subscription{C: make(chan []byte, 64), key: hubKey(tenantID, userID)}
	h.mu.Lock()
	if h.subs[s.key] == nil {
		h.subs[s.key] = map[*Subscription]struct{}{}
	}
	h.subs[s.key][s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Unsubscribe removes s and closes its channel.
func (h *Hub) Unsubscribe(s *Subscription) {
	h.mu.Lock()
	if m := h.subs[s.key]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.key)
		}
	}
	h.mu.Unlock()
	s.once.Do(func() { close(s.C) })
}

// Subscribers counts the connected clients of user userID in tenantID.
func (h *Hub) Subscribers(tenantID, userID string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs[hubKey(tenantID, userID)])
}

// AppEvent is what an in-app client receives.
type AppEvent struct {
	Seq     int64             `json:"seq"`
	Type    string            `json:"type"` // "escalation" or "notice"
	Subject string            `json:"subject,omitempty"`
	Text    string            `json:"text"`
	Actions []Action          `json:"actions,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
}

// publish hands e to every client of the user and reports how many took it.
func (h *Hub) publish(tenantID, userID string, e AppEvent) int {
	e.Seq = h.seq.Add(1)
	b, err := json.Marshal(e)
	if err != nil {
		return 0
	}
	h.mu.RLock()
	var slow []*Subscription
	n := 0
	for s := range h.subs[hubKey(tenantID, userID)] {
		select {
		case s.C <- b:
			n++
		default:
			slow = append(slow, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range slow {
		h.Unsubscribe(s)
	}
	return n
}

// errNoClient fails an in-app message when none of the user's clients is connected.
var errNoClient = errors.New("no app client of the user is connected")

// appSender is the Sender of the in-app channel.
type appSender struct{ hub *Hub }

func (a appSender) Channel() string  { return ChannelApp }
func (a appSender) Available() error { return nil }

func (a appSender) Send(_ context.Context, m OutboundMessage) (string, error) {
	typ := "notice"
	if len(m.Actions) > 0 {
		typ = "escalation"
	}
	if a.hub.publish(m.TenantID, m.To, AppEvent{Type: typ, Subject: m.Subject, Text: m.Text, Actions: m.Actions, Data: m.Data}) == 0 {
		return "", errNoClient
	}
	return "", nil
}
