package voice

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// streamGrace is how long an active session that names no process (written before processes were named)
// is left alone before it counts as interrupted.
const streamGrace = time.Minute

// reasonInterrupted is the end reason of a session whose process stopped while it carried the stream.
const reasonInterrupted = "interrupted: the process carrying its stream stopped"

// InterruptedStreams ends, as interrupted, the active voice sessions of the tenant in ctx whose stream
// was carried by a process that has stopped (Config.Alive): a stream cannot outlive its process, so its
// record must not stay active. Each is ended once, whichever process looks first, and audited. It
// returns how many it ended.
func (s *Service) InterruptedStreams(ctx context.Context) (int, error) {
	if s.cfg.Store == nil {
		return 0, nil
	}
	list, err := s.cfg.Store.VoiceSessionsActive(ctx)
	if err != nil {
		return 0, fmt.Errorf("active voice sessions: %w", err)
	}
	n := 0
	for _, vs := range list {
		gone, err := s.streamGone(ctx, &vs)
		if err != nil {
			return n, err
		}
		if !gone {
			continue
		}
		ok, err := s.cfg.Store.VoiceSessionInterrupt(ctx, vs.ID, vs.Runner, reasonInterrupted, s.cfg.Now())
		if err != nil {
			return n, fmt.Errorf("end voice session %s: %w", vs.ID, err)
		}
		if !ok {
			continue // it ended, or another process ended it first
		}
		n++
		s.log.WarnContext(ctx, "voice session interrupted", slog.String("voice_session", vs.ID), slog.String("runner", vs.Runner))
		s.record(ctx, "voice.session_ended", vs.ID, "voice session ended ("+vs.Transport+"): "+reasonInterrupted,
			map[string]any{"transport": vs.Transport, "outcome": "", "agent_session_id": vs.AgentSessionID, "approval_id": vs.ApprovalID,
				"runner": vs.Runner})
	}
	return n, nil
}

// streamGone reports whether the process carrying active session vs has stopped.
func (s *Service) streamGone(ctx context.Context, vs *Session) (bool, error) {
	switch {
	case vs.Runner == s.cfg.Runner:
		return false, nil // ours: it ends when its stream does
	case vs.Runner == "":
		return vs.StartedAt == nil || s.cfg.Now().Sub(*vs.StartedAt) > streamGrace, nil
	case s.cfg.Alive == nil:
		return true, nil
	}
	alive, err := s.cfg.Alive(ctx, vs.Runner)
	return !alive, err
}
