package httpapi

import (
	"net/http"

	"github.com/it0/it0/internal/auth"
)

// contactTestRequest picks the channel of a test-send; empty means the contact's preferred channel.
type contactTestRequest struct {
	Channel string `json:"channel,omitempty"`
}

// testContact sends one contact a test message on one channel and answers with the recorded message
// (its delivery status and, on failure, the provider's error). The body is optional.
func (s *Server) testContact(w http.ResponseWriter, r *http.Request) error {
	var req contactTestRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	p, _ := auth.PrincipalFrom(r.Context())
	by := p.Email
	if by == "" {
		by = "IT0"
	}
	m, err := s.Comm.TestSend(r.Context(), r.PathValue("id"), req.Channel, by)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}
