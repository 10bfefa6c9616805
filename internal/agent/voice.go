package agent

import "context"

// Event types of a voice conversation bound to a session (the voice module's transcripts). Text is what
// was said; Input holds the details as JSON ({"timings":{…},"interrupted":bool,"voice_session":"…"}).
const (
	EventVoiceUser  EventType = "voice_user"
	EventVoiceAgent EventType = "voice_agent"
)

// Note appends an event that happened outside an engine run (a voice transcript) to the session's stream:
// numbered, published to live subscribers and stored like the engine's own events.
func (s *Service) Note(ctx context.Context, sessionID string, e Event) Event {
	return s.emit(ctx, sessionID, e)
}
