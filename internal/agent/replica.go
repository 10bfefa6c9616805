package agent

import (
	"context"
	"time"
)

// cancelTopic carries requests to stop a session's run to the replica running it.
const cancelTopic = "agent.cancel"

// replicaLink is the service's link to the other replicas.
type replicaLink struct {
	f Fanout
}

// ConnectReplicas links the service to the other replicas through f: live events of sessions running
// anywhere reach this replica's subscribers (Hub.Connect), and Cancel of a session running on another
// replica reaches it. origin names this replica. The returned func undoes it.
func (s *Service) ConnectReplicas(ctx context.Context, f Fanout, origin string) (func(), error) {
	if err := s.hub.Connect(ctx, f, origin); err != nil {
		return nil, err
	}
	msgs, stop, err := f.Listen(ctx, cancelTopic)
	if err != nil {
		s.hub.Disconnect()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range msgs {
			if h := s.live(string(b)); h != nil {
				h.cancel() // the run records its end (cancelled), which the asking replica waits for
			}
		}
	}()
	s.replicas.Store(&replicaLink{f: f})
	return func() {
		s.replicas.Store(nil)
		stop()
		<-done
		s.hub.Disconnect()
	}, nil
}

// remoteCancelWait bounds how long Cancel waits for another replica to stop a run. A session whose
// replica died stays "running" in the store; after this, Cancel ends it itself.
const remoteCancelWait = 10 * time.Second

// cancelRemote asks the replica running sessionID to stop it, and waits until the run has recorded its
// end (or remoteCancelWait passes). Without other replicas it returns at once.
func (s *Service) cancelRemote(ctx context.Context, sessionID string) {
	link := s.replicas.Load()
	if link == nil {
		return
	}
	if err := link.f.Broadcast(ctx, cancelTopic, []byte(sessionID)); err != nil {
		return
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(remoteCancelWait)
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-t.C:
		}
		if sess, err := s.store.SessionGet(ctx, sessionID); err != nil || sess.Status != StatusRunning {
			return
		}
	}
}
