// Package voicetest holds test helpers for IT0's voice module.
package voicetest

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/it0/it0/internal/voice"
)

// SpeechServer starts an HTTP server speaking the OpenAI audio wire format (what IT0_STT_BASE_URL and
// IT0_TTS_BASE_URL point at) and returns its URL: every transcription is heard as heard, every speech is
// 100 ms of tone at 24 kHz. A transcription request without a file is refused as OpenAI does.
func SpeechServer(t testing.TB, heard string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/audio/transcriptions":
			if _, _, err := r.FormFile("file"); err != nil {
				http.Error(w, `{"error":{"message":"file is required"}}`, http.StatusBadRequest)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"text": heard})
		case "/v1/audio/speech":
			pcm := make([]int16, 2400)
			for i := range pcm {
				pcm[i] = int16(6000 * math.Sin(float64(i)/5))
			}
			w.Write(voice.EncodeWAV(pcm, 24000))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
