// Package espeak is voice's offline TTS: the espeak-ng command (Debian espeak-ng). It is robotic and its
// Chinese (the cmn-latn-pinyin voice) is rough; it exists for tests and air-gapped demos, not for
// production calls.
package espeak

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/it0/it0/internal/voice"
)

// Config configures the command.
type Config struct {
	Path   string            // default espeak-ng on PATH
	Voices map[string]string // per language; default en and cmn-latn-pinyin
	Speed  int               // words per minute, default 160
}

// TTS runs espeak-ng once per sentence (~20–30 ms each).
type TTS struct{ cfg Config }

// New finds the command; voice.ErrSpeechUnavailable (wrapped) when it is not installed.
func New(cfg Config) (*TTS, error) {
	if cfg.Path == "" {
		cfg.Path = "espeak-ng"
	}
	p, err := exec.LookPath(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: espeak-ng not found (apt-get install espeak-ng): %v", voice.ErrSpeechUnavailable, err)
	}
	cfg.Path = p
	if cfg.Voices == nil {
		cfg.Voices = map[string]string{"en": "en", "zh-CN": "cmn-latn-pinyin"}
	}
	if cfg.Speed <= 0 {
		cfg.Speed = 160
	}
	return &TTS{cfg: cfg}, nil
}

// Synthesize speaks text (read from stdin, so no text is ever taken for an option) and returns it at 16 kHz.
func (t *TTS) Synthesize(ctx context.Context, text, language string) ([]int16, error) {
	cmd := exec.CommandContext(ctx, t.cfg.Path, "-v", t.cfg.Voices[voice.Lang(language)], "-s", strconv.Itoa(t.cfg.Speed), "--stdout")
	cmd.Stdin = strings.NewReader(text)
	cmd.WaitDelay = time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &voice.SpeechError{Engine: "espeak-ng", Err: fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))}
	}
	pcm, rate, err := voice.ParseWAV(out.Bytes())
	if err != nil {
		return nil, &voice.SpeechError{Engine: "espeak-ng", Err: err}
	}
	return voice.Resample(pcm, rate, voice.SampleRate), nil
}
