package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/vault"
	"github.com/it0/it0/internal/voice"
)

// server speaks the OpenAI audio wire format; mode picks how it answers.
func server(t *testing.T, mode string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk-test" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}`)
			return
		}
		switch mode {
		case "down":
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"detail":"model is loading"}`)
			return
		case "slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		case "garbage":
			io.WriteString(w, "<html>hello</html>")
			return
		}
		switch r.URL.Path {
		case "/v1/audio/transcriptions":
			if err := r.ParseMultipartForm(1 << 20); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			f, _, err := r.FormFile("file")
			if err != nil {
				http.Error(w, `{"error":{"message":"file is required"}}`, http.StatusBadRequest)
				return
			}
			b, _ := io.ReadAll(f)
			pcm, rate, err := voice.ParseWAV(b)
			if err != nil || rate != 16000 {
				http.Error(w, `{"error":{"message":"bad audio"}}`, http.StatusBadRequest)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"text": " " + r.FormValue("model") + " " + r.FormValue("language") + " " +
				r.FormValue("response_format") + " " + itoa(len(pcm)) + " "})
		case "/v1/audio/speech":
			var req struct{ Model, Input, Voice, Response_format string }
			json.NewDecoder(r.Body).Decode(&req)
			if req.Response_format != "wav" || req.Voice == "" || req.Input == "" {
				http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
				return
			}
			// 24 kHz, like OpenAI's: one second of a tone per request.
			pcm := make([]int16, 24000)
			for i := range pcm {
				pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/24000))
			}
			w.Header().Set("Content-Type", "audio/wav")
			w.Write(voice.EncodeWAV(pcm, 24000))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestSTT(t *testing.T) {
	t.Parallel()
	srv := server(t, "ok")
	// Ensure the multipart request carries the file (16 kHz WAV), model, language and format; the base URL
	// may or may not end in /v1.
	for _, base := range []string{srv.URL, srv.URL + "/v1/"} {
		stt := NewSTT(Config{BaseURL: base, Model: "whisper-small", APIKey: "sk-test"})
		got, err := stt.Transcribe(context.Background(), make([]int16, 8000), "zh-CN")
		if err != nil || got != "whisper-small zh json 8000" {
			t.Fatalf("Transcribe = %q, %v", got, err)
		}
	}
}

func TestTTS(t *testing.T) {
	t.Parallel()
	srv := server(t, "ok")
	tts := NewTTS(Config{BaseURL: srv.URL, Model: "kokoro", APIKey: "sk-test", Voices: map[string]string{"en": "af_heart", "zh-CN": "zf_xiaobei"}})
	pcm, err := tts.Synthesize(context.Background(), "hello", "en")
	// Ensure the 24 kHz answer arrives resampled to 16 kHz.
	if err != nil || len(pcm) < 15990 || len(pcm) > 16010 {
		t.Fatalf("Synthesize = %d samples, %v", len(pcm), err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, mode, key, want string
		status                int
	}{
		{"BadKey", "ok", "sk-wrong", "Incorrect API key", 401},
		{"Down", "down", "sk-test", "model is loading", 503},
		{"Garbage", "garbage", "sk-test", "unexpected answer", 0},
		{"Slow", "slow", "sk-test", "deadline exceeded", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := server(t, tc.mode)
			cfg := Config{BaseURL: srv.URL, Model: "m", APIKey: vault.Secret(tc.key), Timeout: 300 * time.Millisecond, Voices: map[string]string{"en": "v"}}
			_, err := NewSTT(cfg).Transcribe(context.Background(), make([]int16, 160), "en")
			var se *voice.SpeechError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) || se.Status != tc.status {
				t.Fatalf("STT err = %v, want a SpeechError (status %d) saying %q", err, tc.status, tc.want)
			}
			if strings.Contains(err.Error(), "sk-") {
				t.Fatalf("the key leaked into %v", err)
			}
			if _, err := NewTTS(cfg).Synthesize(context.Background(), "hi", "en"); !errors.As(err, &se) {
				t.Fatalf("TTS err = %v, want a SpeechError", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := Config{BaseURL: "ftp://x", Model: ""}
	err := c.Validate("IT0_STT")
	if err == nil || !strings.Contains(err.Error(), "IT0_STT_BASE_URL") || !strings.Contains(err.Error(), "IT0_STT_MODEL") {
		t.Fatalf("Validate = %v", err)
	}
}
