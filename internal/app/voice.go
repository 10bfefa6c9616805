package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/twilio"
	"github.com/it0/it0/internal/vault"
	"github.com/it0/it0/internal/voice"
	"github.com/it0/it0/internal/voice/espeak"
	"github.com/it0/it0/internal/voice/openai"
	"github.com/it0/it0/internal/voice/sphinx"
	"github.com/prometheus/client_golang/prometheus"
)

// Voice is the module of the voice gateway: the console's voice and escalation calls that talk.
const Voice = "voice"

// VoiceConfig selects the speech engines (IT0_STT*, IT0_TTS*) and limits of the voice gateway.
type VoiceConfig struct {
	STT        string // openai (default with IT0_STT_BASE_URL), pocketsphinx, or "" for none
	STTBaseURL string
	STTModel   string
	STTKey     vault.Secret
	TTS        string // openai (default with IT0_TTS_BASE_URL), espeak, or "" for none
	TTSBaseURL string
	TTSModel   string
	TTSKey     vault.Secret
	TTSVoiceZH string
	TTSVoiceEN string
	MaxStreams string // per tenant, IT0_VOICE_MAX_STREAMS
}

func (c *VoiceConfig) load(getenv func(string) string) {
	*c = VoiceConfig{STT: getenv("IT0_STT"), STTBaseURL: getenv("IT0_STT_BASE_URL"), STTModel: getenv("IT0_STT_MODEL"),
		STTKey: vault.Secret(getenv("IT0_STT_API_KEY")), TTS: getenv("IT0_TTS"), TTSBaseURL: getenv("IT0_TTS_BASE_URL"),
		TTSModel: getenv("IT0_TTS_MODEL"), TTSKey: vault.Secret(getenv("IT0_TTS_API_KEY")), TTSVoiceZH: getenv("IT0_TTS_VOICE_ZH"),
		TTSVoiceEN: getenv("IT0_TTS_VOICE_EN"), MaxStreams: getenv("IT0_VOICE_MAX_STREAMS")}
	if c.STT == "" && c.STTBaseURL != "" {
		c.STT = "openai"
	}
	if c.TTS == "" && c.TTSBaseURL != "" {
		c.TTS = "openai"
	}
	if c.TTSKey.IsZero() {
		c.TTSKey = c.STTKey // one key for a server that does both
	}
}

func (c *VoiceConfig) validate() []error {
	var list []error
	switch c.STT {
	case "", "pocketsphinx":
	case "openai":
		if err := c.sttConfig().Validate("IT0_STT"); err != nil {
			list = append(list, err)
		}
	default:
		list = append(list, fmt.Errorf("IT0_STT %q: want openai or pocketsphinx", c.STT))
	}
	switch c.TTS {
	case "", "espeak":
	case "openai":
		if err := c.ttsConfig().Validate("IT0_TTS"); err != nil {
			list = append(list, err)
		}
		if c.TTSVoiceZH == "" || c.TTSVoiceEN == "" {
			list = append(list, errors.New("IT0_TTS_VOICE_ZH and IT0_TTS_VOICE_EN are required with IT0_TTS_BASE_URL (e.g. zf_xiaobei and af_heart for Kokoro)"))
		}
	default:
		list = append(list, fmt.Errorf("IT0_TTS %q: want openai or espeak", c.TTS))
	}
	if c.MaxStreams != "" {
		if n, err := strconv.Atoi(c.MaxStreams); err != nil || n < 1 || n > 10000 {
			list = append(list, fmt.Errorf("IT0_VOICE_MAX_STREAMS %q: want 1 to 10000 concurrent streams per tenant", c.MaxStreams))
		}
	}
	return list
}

func (c *VoiceConfig) sttConfig() openai.Config {
	return openai.Config{BaseURL: c.STTBaseURL, Model: c.STTModel, APIKey: c.STTKey}
}

func (c *VoiceConfig) ttsConfig() openai.Config {
	return openai.Config{BaseURL: c.TTSBaseURL, Model: c.TTSModel, APIKey: c.TTSKey,
		Voices: map[string]string{"zh-CN": c.TTSVoiceZH, "en": c.TTSVoiceEN}}
}

// engines builds the configured speech engines; either is nil when not configured. close releases them.
func (c *VoiceConfig) engines() (stt voice.STT, tts voice.TTS, close func() error, err error) {
	close = func() error { return nil }
	switch c.STT {
	case "openai":
		stt = openai.NewSTT(c.sttConfig())
	case "pocketsphinx":
		s, err := sphinx.New(sphinx.Config{})
		if err != nil {
			return nil, nil, close, fmt.Errorf("IT0_STT=pocketsphinx: %w", err)
		}
		stt, close = s, s.Close
	}
	switch c.TTS {
	case "openai":
		tts = openai.NewTTS(c.ttsConfig())
	case "espeak":
		t, err := espeak.New(espeak.Config{})
		if err != nil {
			close()
			return nil, nil, func() error { return nil }, fmt.Errorf("IT0_TTS=espeak: %w", err)
		}
		tts = t
	}
	return stt, tts, close, nil
}

// voiceSecret derives the key of stream tokens from the JWT secret, so the two never share a key.
func voiceSecret(jwtSecret string) []byte {
	m := hmac.New(sha256.New, []byte(jwtSecret))
	m.Write([]byte("it0 voice stream tokens"))
	return m.Sum(nil)
}

// initVoice builds the gateway with its engines and metrics. Without engines it still answers (503 with
// what to set), and escalation calls keep the keypad.
func (a *App) initVoice(context.Context) (func(context.Context) error, error) {
	c := a.cfg.Voice
	stt, tts, closeEngines, err := c.engines()
	if err != nil {
		return nil, err
	}
	streams := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "it0_voice_streams", Help: "Open voice streams by transport."}, []string{"transport"})
	stages := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "it0_voice_turn_seconds",
		Help:    "Voice turn latency by stage, from the end of the person's speech (stt, agent, tts, first_audio) and the gateway's own share (gateway).",
		Buckets: []float64{.005, .01, .02, .05, .1, .2, .3, .5, .75, 1, 2, 5, 10}}, []string{"stage"})
	bargeIns := prometheus.NewCounter(prometheus.CounterOpts{Name: "it0_voice_barge_ins_total", Help: "Times a person talked over the agent."})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_voice_errors_total", Help: "Voice errors by stage (stt, tts, agent)."}, []string{"stage"})
	for _, col := range []prometheus.Collector{streams, stages, bargeIns, failures} {
		if err := a.registry.Register(col); err != nil {
			closeEngines()
			return nil, fmt.Errorf("register voice metrics: %w", err)
		}
	}
	maxStreams, _ := strconv.Atoi(c.MaxStreams)
	cc := a.cfg.Comm
	tw := twilio.New(twilio.Config{AccountSID: cc.TwilioAccountSID, AuthToken: cc.TwilioAuthToken, From: cc.TwilioPhoneNumber, BaseURL: cc.TwilioBaseURL})
	var answers voice.Answerer
	if a.Comm != nil {
		answers = a.Comm
	}
	svc, err := voice.New(voice.Config{STT: stt, TTS: tts, Secret: voiceSecret(a.cfg.JWTSecret), PublicURL: a.cfg.PublicURL, MaxStreams: maxStreams,
		Logger: a.log, Streams: func(tr string, d int) { streams.WithLabelValues(tr).Add(float64(d)) },
		Metrics: voice.Metrics{Stage: func(st string, d time.Duration) { stages.WithLabelValues(st).Observe(d.Seconds()) },
			BargeIn: bargeIns.Inc, Error: func(st string) { failures.WithLabelValues(st).Inc() }}},
		voiceAgent{a.Agent, a.Approvals}, answers, tw, a.Audit)
	if err != nil {
		closeEngines()
		return nil, err
	}
	if err := svc.Available(); err != nil {
		a.log.Info("voice unavailable", slog.String("reason", err.Error()))
	} else {
		a.log.Info("voice ready", slog.String("stt", c.STT), slog.String("tts", c.TTS), slog.String("vad", "energy"))
	}
	a.Voice = svc
	return func(context.Context) error { return closeEngines() }, nil
}

// voiceMedia is the gateway as the Twilio phone channel sees it. It resolves a.Voice at call time:
// comm is built before voice.
type voiceMedia struct{ a *App }

func (m voiceMedia) Ready() error {
	if m.a.Voice == nil {
		return errors.New("the voice module is not running in this process")
	}
	return m.a.Voice.CallsReady()
}

func (m voiceMedia) Prepare(ctx context.Context, o comm.OutboundMessage) (string, map[string]string, error) {
	if m.a.Voice == nil {
		return "", nil, errors.New("the voice module is not running in this process")
	}
	return m.a.Voice.PrepareCall(ctx, o.Data["approval_id"], o.To, o.Language)
}
