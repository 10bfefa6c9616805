package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/voice"
)

// voiceRoutes are the voice gateway's endpoints: voice sessions, the console's audio socket and Twilio's
// Media Streams socket.
func (s *Server) voiceRoutes() []route {
	if s.Voice == nil {
		return nil
	}
	return []route{
		{method: "GET", path: "/api/v1/voice/status", summary: "Whether voice works here (both speech engines configured)", perm: auth.PermViewDashboard,
			handler: s.getVoiceStatus, resp: voiceStatus{}},
		{method: "POST", path: "/api/v1/voice/sessions", summary: "Open a voice session on an agent session (then connect /ws/voice)", perm: auth.PermStartTask,
			handler: s.createVoiceSession, req: createVoiceSessionRequest{}, resp: voice.Session{}, status: http.StatusCreated},
		{method: "GET", path: "/api/v1/voice/sessions/{id}", summary: "A voice session: state, transport, turns and their timings", perm: auth.PermViewDashboard,
			handler: s.getVoiceSession, resp: voice.Session{}},
		{method: "GET", path: "/ws/voice", summary: "WebSocket: a voice session's audio (binary PCM s16le 16 kHz) and JSON control frames (?voice_session=ID&token=…)",
			perm: auth.PermStartTask, handler: s.voiceSocket},
		{method: "GET", path: "/api/v1/twilio/media", summary: "Twilio Media Streams WebSocket (authenticated by the call's single-use token <Parameter>)", public: true,
			handler: s.twilioMedia},
	}
}

type createVoiceSessionRequest struct {
	SessionID string `json:"session_id"`
	Locale    string `json:"locale,omitempty"` // zh-CN or en; default the tenant's
}

// Validate checks the session id and locale.
func (r createVoiceSessionRequest) Validate() error {
	if strings.TrimSpace(r.SessionID) == "" {
		return errs.Invalidf("session_id", "session_id is required: the agent session the voice talks to")
	}
	switch r.Locale {
	case "", "zh", "zh-CN", "en", "en-US":
		return nil
	}
	return errs.Invalidf("locale", "locale %q: want zh-CN or en", r.Locale)
}

func (s *Server) createVoiceSession(w http.ResponseWriter, r *http.Request) error {
	var req createVoiceSessionRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	loc := req.Locale
	if loc == "" && s.Auth != nil {
		loc = s.Auth.TenantLocale(r.Context())
	}
	vs, err := s.Voice.CreateSession(r.Context(), req.SessionID, loc)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, vs)
	return nil
}

func (s *Server) getVoiceSession(w http.ResponseWriter, r *http.Request) error {
	vs, err := s.Voice.Session(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, vs)
	return nil
}

// voiceSocket is the console's voice stream. The session is checked before the upgrade, so a wrong id
// is a plain HTTP error.
func (s *Server) voiceSocket(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("voice_session")
	if _, err := s.Voice.Session(r.Context(), id); err != nil {
		return err
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.WSOrigins, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil // Accept has answered the client
	}
	c.SetReadLimit(voice.MaxAppFrame + 1024)
	s.Voice.ServeApp(r.Context(), wsConn{c}, id)
	return nil
}

// twilioMedia is Twilio's Media Streams connection. Twilio sends no credentials IT0 can check before the
// upgrade; the start message's token <Parameter> authenticates the stream.
func (s *Server) twilioMedia(w http.ResponseWriter, r *http.Request) error {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil
	}
	c.SetReadLimit(voice.MaxTwilioMessage + 1024)
	s.Voice.ServeTwilio(r.Context(), wsConn{c})
	return nil
}

// wsConn adapts a WebSocket to voice.Conn.
type wsConn struct{ c *websocket.Conn }

func (w wsConn) Read(ctx context.Context) (bool, []byte, error) {
	typ, b, err := w.c.Read(ctx)
	return typ == websocket.MessageText, b, err
}

// writeTimeout cuts off a far end that stops reading.
const writeTimeout = 10 * time.Second

func (w wsConn) Write(ctx context.Context, text bool, b []byte) error {
	typ := websocket.MessageBinary
	if text {
		typ = websocket.MessageText
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return w.c.Write(ctx, typ, b)
}

func (w wsConn) Close(code int, reason string) error {
	return w.c.Close(websocket.StatusCode(code), reason)
}
