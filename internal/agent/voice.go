package agent

import (
	"context"

	"github.com/it0/it0/internal/agent/agentapi"
)

// Event types of a voice conversation bound to a session (agentapi).
const (
	EventVoiceUser  = agentapi.EventVoiceUser
	EventVoiceAgent = agentapi.EventVoiceAgent
)

// Note appends an event that happened outside an engine run (a voice transcript) to the session's stream:
// numbered, published to live subscribers and stored like the engine's own events.
func (s *Service) Note(ctx context.Context, sessionID string, e Event) Event {
	return s.emit(ctx, sessionID, e)
}
