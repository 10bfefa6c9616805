package voice

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// STT turns one utterance into text.
type STT interface {
	// Transcribe returns the text of audio (16 kHz PCM16) in language (zh-CN or en); "" when nothing was
	// recognised. A *SpeechError says whether the engine failed or answered nonsense.
	Transcribe(ctx context.Context, audio []int16, language string) (string, error)
}

// TTS turns text into speech.
type TTS interface {
	// Synthesize returns text spoken in language (zh-CN or en) as 16 kHz PCM16.
	Synthesize(ctx context.Context, text, language string) ([]int16, error)
}

// SpeechError is an STT or TTS engine's failure, with what a user can do about it.
type SpeechError struct {
	Engine string // e.g. "openai stt", "espeak-ng"
	Status int    // HTTP status when the engine is a server, else 0
	Err    error
}

func (e *SpeechError) Error() string { return e.Engine + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *SpeechError) Unwrap() error { return e.Err }

// ErrSpeechUnavailable is returned by engines that are not configured or not installed.
var ErrSpeechUnavailable = errors.New("speech engine unavailable")

// Lang normalises a locale to the two the gateway speaks: zh* → zh-CN, anything else → en.
func Lang(locale string) string {
	if strings.HasPrefix(strings.ToLower(locale), "zh") {
		return "zh-CN"
	}
	return "en"
}

// Sentences splits text at sentence ends (. ! ? ; and their CJK forms, and newlines) and returns the
// complete sentences and the unfinished rest. A period ends a sentence only before a space, so "1.5" and
// "10.0.0.1" stay whole.
func Sentences(text string) (done []string, rest string) {
	start := 0
	for i, r := range text {
		end := false
		switch r {
		case '。', '！', '？', '；', '!', '?', ';', '\n':
			end = true
		case '.':
			// Only before a space: at the end of streamed text "1." may yet become "1.5".
			next, _ := utf8.DecodeRuneInString(text[i+1:])
			end = unicode.IsSpace(next)
		}
		if !end {
			continue
		}
		if s := strings.TrimSpace(text[start : i+utf8.RuneLen(r)]); s != "" && strings.TrimFunc(s, unicode.IsPunct) != "" {
			done = append(done, s)
		}
		start = i + utf8.RuneLen(r)
	}
	return done, text[start:]
}
