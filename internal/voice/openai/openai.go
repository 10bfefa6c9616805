// Package openai is voice's adapter for OpenAI-compatible speech servers: POST /v1/audio/transcriptions
// (STT, multipart) and POST /v1/audio/speech (TTS, JSON in, WAV out). speaches (faster-whisper + Kokoro),
// Kokoro-FastAPI, vLLM, LocalAI and OpenAI itself speak this format.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/it0/it0/internal/vault"
	"github.com/it0/it0/internal/voice"
)

// Config configures one endpoint (STT and TTS may live on different servers).
type Config struct {
	BaseURL string       // e.g. http://speaches:8000 or https://api.openai.com/v1
	Model   string       // e.g. Systran/faster-whisper-small, kokoro, whisper-1, tts-1
	APIKey  vault.Secret // sent as a bearer token when set
	// Voices name the TTS voice per language ("zh-CN", "en"), e.g. zf_xiaobei and af_heart for Kokoro.
	Voices map[string]string
	// Timeout bounds one request (default 30 s); HTTP defaults to a client with that timeout.
	Timeout time.Duration
	HTTP    *http.Client
}

func (c *Config) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: c.Timeout}
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
}

// endpoint is base + /v1/audio/<what>, whether or not the base already ends in /v1.
func (c *Config) endpoint(what string) string {
	if strings.HasSuffix(c.BaseURL, "/v1") {
		return c.BaseURL + "/audio/" + what
	}
	return c.BaseURL + "/v1/audio/" + what
}

// Validate checks the URL and model.
func (c Config) Validate(prefix string) error {
	var list []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		list = append(list, fmt.Errorf("%s_BASE_URL %q: want an http(s) URL of an OpenAI-compatible speech server", prefix, c.BaseURL))
	}
	if c.Model == "" {
		list = append(list, fmt.Errorf("%s_MODEL is required with %s_BASE_URL", prefix, prefix))
	}
	return errors.Join(list...)
}

// STT transcribes through /v1/audio/transcriptions.
type STT struct{ cfg Config }

// NewSTT returns the client.
func NewSTT(cfg Config) *STT {
	cfg.defaults()
	return &STT{cfg: cfg}
}

// maxAnswer bounds what is read of an answer: 1 MB of text, 32 MB of audio (a long sentence at 24 kHz is
// well under 1 MB).
const (
	maxText  = 1 << 20
	maxAudio = 32 << 20
)

// Transcribe posts audio as a 16 kHz WAV file with the model and language and returns the text.
func (s *STT) Transcribe(ctx context.Context, audio []int16, language string) (string, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, err := w.CreateFormFile("file", "speech.wav")
	if err != nil {
		return "", err
	}
	fw.Write(voice.EncodeWAV(audio, voice.SampleRate))
	w.WriteField("model", s.cfg.Model)
	w.WriteField("language", strings.SplitN(voice.Lang(language), "-", 2)[0]) // zh or en
	w.WriteField("response_format", "json")
	w.WriteField("temperature", "0")
	if voice.Lang(language) == "zh-CN" {
		w.WriteField("prompt", "同意，拒绝，批准，取消。") // biases the decoder towards the answers that matter
	}
	w.Close()
	b, err := s.cfg.do(ctx, "openai stt", s.cfg.endpoint("transcriptions"), w.FormDataContentType(), &body, maxText)
	if err != nil {
		return "", err
	}
	var out struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Text == nil {
		return "", &voice.SpeechError{Engine: "openai stt", Err: fmt.Errorf("unexpected answer (want JSON with \"text\"): %.80q", b)}
	}
	return strings.TrimSpace(*out.Text), nil
}

// TTS synthesises through /v1/audio/speech, asking for WAV so the sample rate is known.
type TTS struct{ cfg Config }

// NewTTS returns the client.
func NewTTS(cfg Config) *TTS {
	cfg.defaults()
	return &TTS{cfg: cfg}
}

// Synthesize returns text spoken with the language's voice, resampled to 16 kHz.
func (t *TTS) Synthesize(ctx context.Context, text, language string) ([]int16, error) {
	req, _ := json.Marshal(map[string]any{"model": t.cfg.Model, "input": text, "voice": t.cfg.Voices[voice.Lang(language)],
		"response_format": "wav"})
	b, err := t.cfg.do(ctx, "openai tts", t.cfg.endpoint("speech"), "application/json", bytes.NewReader(req), maxAudio)
	if err != nil {
		return nil, err
	}
	pcm, rate, err := voice.ParseWAV(b)
	if err != nil {
		return nil, &voice.SpeechError{Engine: "openai tts", Err: err}
	}
	return voice.Resample(pcm, rate, voice.SampleRate), nil
}

func (c *Config) do(ctx context.Context, engine, u, contentType string, body io.Reader, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, &voice.SpeechError{Engine: engine, Err: err}
	}
	req.Header.Set("Content-Type", contentType)
	if !c.APIKey.IsZero() {
		req.Header.Set("Authorization", "Bearer "+c.APIKey.Reveal())
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry credentials
		}
		return nil, &voice.SpeechError{Engine: engine, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, &voice.SpeechError{Engine: engine, Status: resp.StatusCode, Err: fmt.Errorf("read answer: %w", err)}
	}
	if int64(len(b)) > limit {
		return nil, &voice.SpeechError{Engine: engine, Status: resp.StatusCode, Err: fmt.Errorf("answer over %d bytes", limit)}
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
			Detail any `json:"detail"` // FastAPI servers
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		} else if e.Detail != nil {
			msg = fmt.Sprint(e.Detail)
		}
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return nil, &voice.SpeechError{Engine: engine, Status: resp.StatusCode, Err: fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)}
	}
	return b, nil
}
