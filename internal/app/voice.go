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
	"github.com/it0/it0/internal/voice/silero"
	"github.com/it0/it0/internal/voice/sphinx"
	"github.com/prometheus/client_golang/prometheus"
)

// Voice modules: the voice gateway's service (the console's voice and escalation calls that talk), and
// the deploy target that serves its streams (/ws/voice, /api/v1/twilio/media) and runs their pipelines.
const (
	VoiceService = "voice-service"
	Voice        = "voice"
)

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
	// VAD is silero, energy, or "" for Silero when its runtime loads and the energy VAD otherwise.
	VAD    string
	Silero silero.Config // IT0_ONNXRUNTIME_LIB, IT0_SILERO_MODEL (default: the install script's cache)
}

func (c *VoiceConfig) load(getenv func(string) string) {
	*c = VoiceConfig{STT: getenv("IT0_STT"), STTBaseURL: getenv("IT0_STT_BASE_URL"), STTModel: getenv("IT0_STT_MODEL"),
		STTKey: vault.Secret(getenv("IT0_STT_API_KEY")), TTS: getenv("IT0_TTS"), TTSBaseURL: getenv("IT0_TTS_BASE_URL"),
		TTSModel: getenv("IT0_TTS_MODEL"), TTSKey: vault.Secret(getenv("IT0_TTS_API_KEY")), TTSVoiceZH: getenv("IT0_TTS_VOICE_ZH"),
		TTSVoiceEN: getenv("IT0_TTS_VOICE_EN"), MaxStreams: getenv("IT0_VOICE_MAX_STREAMS"), VAD: getenv("IT0_VAD"),
		Silero: silero.DefaultConfig(getenv)}
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
	switch c.VAD {
	case "", "silero", "energy":
	default:
		list = append(list, fmt.Errorf("IT0_VAD %q: want silero or energy (unset: Silero when its runtime is installed)", c.VAD))
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

// vad loads the configured VAD: nil newVAD means the energy VAD. With IT0_VAD unset a Silero that does
// not load is not an error: the gateway says once which VAD it uses and why.
func (c *VoiceConfig) vad(log *slog.Logger) (newVAD func() voice.VAD, name string, close func() error, err error) {
	close = func() error { return nil }
	if c.VAD == "energy" {
		return nil, "energy", close, nil
	}
	rt, err := silero.Open(c.Silero)
	if err != nil {
		if c.VAD == "silero" {
			return nil, "", close, fmt.Errorf("IT0_VAD=silero: %w (run scripts/install-voice-models.sh, or set IT0_ONNXRUNTIME_LIB and IT0_SILERO_MODEL)", err)
		}
		log.Info("voice: Silero VAD unavailable, using the energy VAD", slog.String("reason", err.Error()))
		return nil, "energy", close, nil
	}
	newVAD = func() voice.VAD {
		v, err := rt.NewVAD()
		if err != nil { // out of memory for five small tensors: this stream gets the fallback
			log.Warn("voice: Silero VAD for a stream", slog.String("error", err.Error()))
			return voice.NewEnergyVAD()
		}
		return v
	}
	return newVAD, "silero (ONNX Runtime " + rt.Version() + ")", rt.Close, nil
}

var _ voice.VAD = (*silero.VAD)(nil)

// voiceSecret derives the key of stream tokens from the JWT secret, so the two never share a key.
func voiceSecret(jwtSecret string) []byte {
	m := hmac.New(sha256.New, []byte(jwtSecret))
	m.Write([]byte("it0 voice stream tokens"))
	return m.Sum(nil)
}

// initVoice builds the gateway with its engines and metrics. Without engines it still answers (503 with
// what to set), and escalation calls keep the keypad. The speech engines are loaded only where voice
// streams run or escalation calls are placed (the voice and comm targets): elsewhere the gateway serves
// its records without them.
func (a *App) initVoice(context.Context) (func(context.Context) error, error) {
	c := a.cfg.Voice
	if !a.runs(Voice) && !a.runs(Comm) {
		c.STT, c.TTS, c.VAD = "", "", "energy"
	}
	stt, tts, closeSpeech, err := c.engines()
	if err != nil {
		return nil, err
	}
	if a.opts.Voice.NewVAD != nil {
		c.VAD = "energy" // the test's VAD replaces the configured one: do not load Silero for nothing
	}
	newVAD, vadName, closeVAD, err := c.vad(a.log)
	if err != nil {
		closeSpeech()
		return nil, err
	}
	if a.opts.Voice.NewVAD != nil {
		newVAD, vadName = a.opts.Voice.NewVAD, "the test's"
	}
	closeEngines := func() error { return errors.Join(closeSpeech(), closeVAD()) }
	streams := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "it0_voice_streams", Help: "Open voice streams by transport."}, []string{"transport"})
	stages := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "it0_voice_turn_seconds",
		Help:    "Voice turn latency by stage, from the end of the person's speech (stt, agent, tts, first_audio) and the gateway's own share (gateway).",
		Buckets: []float64{.005, .01, .02, .05, .1, .2, .3, .5, .75, 1, 2, 5, 10}}, []string{"stage"})
	bargeIns := prometheus.NewCounter(prometheus.CounterOpts{Name: "it0_voice_barge_ins_total", Help: "Times a person talked over the agent."})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_voice_errors_total", Help: "Voice errors by stage (stt, tts, agent)."}, []string{"stage"})
	pacing := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "it0_voice_pacing_late_seconds",
		Help:    "How late each paced outbound audio frame left the gateway: send time minus its deadline (target under 5 ms).",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1}})
	for _, col := range []prometheus.Collector{streams, stages, bargeIns, failures, pacing} {
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
	var vstore voice.Store
	if a.Store != nil {
		vstore = a.Store
	}
	svc, err := voice.New(voice.Config{STT: stt, TTS: tts, Store: vstore, Secret: voiceSecret(a.cfg.JWTSecret), PublicURL: a.cfg.PublicURL, MaxStreams: maxStreams,
		Runner: a.replicaID, Alive: a.replicaAlive,
		NewVAD: newVAD, Frame: a.opts.Voice.Frame, SilenceTimeout: a.opts.Voice.SilenceTimeout, Logger: a.log, Streams: func(tr string, d int) { streams.WithLabelValues(tr).Add(float64(d)) },
		Metrics: voice.Metrics{Stage: func(st string, d time.Duration) { stages.WithLabelValues(st).Observe(d.Seconds()) },
			BargeIn: bargeIns.Inc, Error: func(st string) { failures.WithLabelValues(st).Inc() },
			PacingLate: func(d time.Duration) { pacing.Observe(max(d, 0).Seconds()) }}},
		voiceAgent{a.Agent, a.Approvals}, answers, tw, a.Audit)
	if err != nil {
		closeEngines()
		return nil, err
	}
	if err := svc.Available(); err != nil {
		a.log.Info("voice unavailable", slog.String("reason", err.Error()))
	} else {
		a.log.Info("voice ready", slog.String("stt", c.STT), slog.String("tts", c.TTS), slog.String("vad", vadName))
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
