package agent

import (
	"context"
	"log/slog"
	"sync"
)

// eventSeq numbers one session's events in this process.
type eventSeq struct {
	mu     sync.Mutex
	last   int64
	loaded bool // last is the stored last_seq (or what this process stored since)
	dead   bool // forgotten: get a new one
}

// emit numbers e as the next event of its session, publishes it, then stores it before returning, so live
// subscribers never wait on the database and the store still holds every event, in order, before the run
// goes on. A persistence failure is logged: the run goes on, and the client has seen the live event.
func (s *Service) emit(ctx context.Context, sessionID string, e Event) Event {
	e.SessionID = sessionID
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	sctx := context.WithoutCancel(ctx)
	for {
		v, _ := s.seqs.LoadOrStore(sessionID, &eventSeq{})
		seq := v.(*eventSeq)
		seq.mu.Lock()
		if seq.dead {
			seq.mu.Unlock()
			continue
		}
		if !seq.loaded {
			if sess, err := s.store.SessionGet(sctx, sessionID); err == nil {
				seq.last, seq.loaded = sess.LastSeq, true
			}
		}
		if seq.loaded {
			seq.last++
			e.Seq = seq.last
			s.hub.Publish(e)
		}
		err := s.store.EventAppend(sctx, &e) // numbers e itself when the session could not be read
		if err != nil {
			seq.loaded = false // e.g. another process wrote to this session: read the number again
			s.log.ErrorContext(ctx, "store event", slog.String("session_id", sessionID), slog.String("error", err.Error()))
		} else if !seq.loaded {
			s.hub.Publish(e)
		}
		seq.mu.Unlock()
		return e
	}
}

// Settle returns once every event of the session already published is also stored (a subscriber that
// then reads the store misses nothing published before it subscribed).
func (s *Service) Settle(sessionID string) {
	if v, ok := s.seqs.Load(sessionID); ok {
		seq := v.(*eventSeq)
		seq.mu.Lock()
		seq.mu.Unlock() //nolint:staticcheck // waiting for the emit in flight is the point
	}
}

// forgetSeq drops a session's event numbering once its run has ended (the next emit reads it again).
func (s *Service) forgetSeq(sessionID string) {
	v, ok := s.seqs.Load(sessionID)
	if !ok {
		return
	}
	seq := v.(*eventSeq)
	seq.mu.Lock()
	seq.dead = true
	s.seqs.Delete(sessionID)
	seq.mu.Unlock()
}
