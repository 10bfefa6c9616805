package mcpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// inflight tracks the JSON-RPC requests read from the client and not yet answered, so the stdio
// transport can hold back the client's EOF until every request it sent before closing has its answer:
// a client that writes its requests and closes stdin (a script, `claude` ending its turn) must not lose
// them.
type inflight struct {
	mu   sync.Mutex
	ids  map[string]bool
	idle chan struct{} // closed while nothing is in flight
}

func newInflight() *inflight {
	idle := make(chan struct{})
	close(idle)
	return &inflight{ids: make(map[string]bool), idle: idle}
}

// message is what inflight reads of a JSON-RPC message: a request has a method and an id, a response
// an id and no method.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}

// see records the requests (fromClient) or the answers (from the server) in one line of JSON-RPC: a
// message or a batch of them. Lines that do not parse are the SDK's to reject.
func (f *inflight) see(line []byte, fromClient bool) {
	line = bytes.TrimSpace(line)
	var msgs []message
	if len(line) > 0 && line[0] == '[' {
		if json.Unmarshal(line, &msgs) != nil {
			return
		}
	} else {
		var m message
		if json.Unmarshal(line, &m) != nil {
			return
		}
		msgs = []message{m}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		id := idKey(m.ID)
		switch {
		case id == "":
		case fromClient && m.Method != "" && !strings.HasPrefix(m.Method, "subscriptions/"):
			// (subscriptions/listen stays open for the whole session: it ends with the connection.)
			if len(f.ids) == 0 {
				f.idle = make(chan struct{})
			}
			f.ids[id] = true
		case !fromClient && m.Method == "" && f.ids[id]:
			delete(f.ids, id)
			if len(f.ids) == 0 {
				close(f.idle)
			}
		}
	}
}

// idKey normalises a JSON-RPC id (a string or a number) so a request and its answer match.
func idKey(raw json.RawMessage) string {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if len(raw) == 0 || d.Decode(&v) != nil || v == nil {
		return ""
	}
	return fmt.Sprintf("%T:%v", v, v)
}

// wait returns a channel closed when nothing is in flight.
func (f *inflight) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.idle
}

// stdinReader passes the client's lines through, noting its requests, and reports EOF only once they
// are all answered (or ctx ends).
type stdinReader struct {
	ctx  context.Context
	r    *bufio.Reader
	in   *inflight
	line []byte // the rest of the current line
}

func (s *stdinReader) Read(p []byte) (int, error) {
	if len(s.line) == 0 {
		line, err := s.r.ReadBytes('\n')
		if len(line) == 0 {
			if errors.Is(err, io.EOF) {
				select {
				case <-s.in.wait():
				case <-s.ctx.Done():
				}
			}
			return 0, err
		}
		s.in.see(line, true)
		s.line = line
	}
	n := copy(p, s.line)
	s.line = s.line[n:]
	return n, nil
}

// Close leaves the client's stream open: it is not ours.
func (s *stdinReader) Close() error { return nil }

// stdoutWriter writes to the client, noting the answers in each complete line.
type stdoutWriter struct {
	w   io.Writer
	in  *inflight
	buf []byte
}

func (s *stdoutWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.buf = append(s.buf, p[:n]...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		s.in.see(s.buf[:i], false)
		s.buf = s.buf[i+1:]
	}
	return n, err
}

// Close leaves the client's stream open: it is not ours.
func (s *stdoutWriter) Close() error { return nil }
