package httpapi

import "net/http"

// voiceStatus says whether the console can talk: the gateway runs here and has both speech engines. The
// console shows its voice buttons only when it can (without engines the gateway answers 503).
type voiceStatus struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
}

func (s *Server) getVoiceStatus(w http.ResponseWriter, r *http.Request) error {
	st := voiceStatus{Available: true}
	if err := s.Voice.Available(); err != nil {
		st = voiceStatus{Reason: err.Error()}
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
