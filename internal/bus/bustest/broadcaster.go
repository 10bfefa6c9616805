package bustest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// Broadcaster is the floor of the WebSocket fan-out benchmarks: a bare server that writes each message
// to every connected client in turn, with nothing in between. It closes when the test ends.
type Broadcaster struct {
	// URL is where clients connect (an http:// URL, which WebSocket clients dial as ws://).
	URL string

	mu     sync.Mutex
	conns  []*websocket.Conn
	joined chan struct{}
}

// NewBroadcaster starts a broadcaster for up to clients clients.
func NewBroadcaster(tb testing.TB, clients int) *Broadcaster {
	b := &Broadcaster{joined: make(chan struct{}, clients)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns = append(b.conns, c)
		b.mu.Unlock()
		b.joined <- struct{}{}
		<-r.Context().Done()
	}))
	tb.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

// WaitJoined waits until n clients have connected.
func (b *Broadcaster) WaitJoined(n int) {
	for range n {
		<-b.joined
	}
}

// Send writes data to every connected client, one after another.
func (b *Broadcaster) Send(data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Write(context.Background(), websocket.MessageText, data)
	}
}
