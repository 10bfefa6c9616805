// Package sphinx is voice's offline STT: CMU pocketsphinx (Debian pocketsphinx, pocketsphinx-en-us) in
// grammar mode. It hears only English yes/no answers — yes, yeah, approve, go ahead, confirm; no, nope,
// reject, cancel, deny — and anything else as "garbage" (a loop of one-phone words), so unrelated speech
// never turns into an answer. It is for tests and air-gapped demos; it cannot transcribe free speech or
// Chinese.
package sphinx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/it0/it0/internal/voice"
)

// Default locations of the Debian packages.
const (
	DefaultModel = "/usr/share/pocketsphinx/model/en-us/en-us"
	DefaultDict  = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"
)

// Config configures the recogniser.
type Config struct {
	Path  string // default pocketsphinx_continuous on PATH
	Model string // acoustic model directory, default DefaultModel
	Dict  string // pronunciation dictionary the answer words are taken from, default DefaultDict
}

// answers are the words of the grammar.
var answers = map[string][]string{
	"yes": {"yes", "yeah", "approve", "go ahead", "confirm"},
	"no":  {"no", "nope", "reject", "cancel", "deny"},
}

// phones of the en-us model: the garbage loop has one word per phone.
var phones = strings.Fields("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH")

// STT runs pocketsphinx_continuous on each utterance (as a WAV file in its own directory).
type STT struct {
	cfg Config
	dir string
}

// New checks the installation and writes the grammar and dictionary; Close removes them.
func New(cfg Config) (*STT, error) {
	if cfg.Path == "" {
		cfg.Path = "pocketsphinx_continuous"
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if cfg.Dict == "" {
		cfg.Dict = DefaultDict
	}
	p, err := exec.LookPath(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: pocketsphinx_continuous not found (apt-get install pocketsphinx pocketsphinx-en-us): %v", voice.ErrSpeechUnavailable, err)
	}
	cfg.Path = p
	if _, err := os.Stat(filepath.Join(cfg.Model, "mdef")); err != nil {
		return nil, fmt.Errorf("%w: pocketsphinx model %s: %v", voice.ErrSpeechUnavailable, cfg.Model, err)
	}
	dict, err := answerDict(cfg.Dict)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "it0-sphinx-")
	if err != nil {
		return nil, err
	}
	s := &STT{cfg: cfg, dir: dir}
	if err := errors.Join(os.WriteFile(s.path("answer.dict"), dict, 0o600), os.WriteFile(s.path("answer.gram"), grammar(), 0o600)); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Close removes the grammar files.
func (s *STT) Close() error { return os.RemoveAll(s.dir) }

func (s *STT) path(name string) string { return filepath.Join(s.dir, name) }

// answerDict takes the answer words' pronunciations from the full dictionary and adds the garbage words.
func answerDict(full string) ([]byte, error) {
	f, err := os.Open(full)
	if err != nil {
		return nil, fmt.Errorf("%w: pocketsphinx dictionary: %v", voice.ErrSpeechUnavailable, err)
	}
	defer f.Close()
	want := map[string]bool{}
	for _, ws := range answers {
		for _, w := range ws {
			for _, x := range strings.Fields(w) {
				want[x] = true
			}
		}
	}
	var b bytes.Buffer
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		word, _, _ := strings.Cut(sc.Text(), " ")
		if want[word] {
			b.WriteString(sc.Text() + "\n")
			delete(want, word)
		}
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("%w: dictionary %s lacks %d answer words", voice.ErrSpeechUnavailable, full, len(want))
	}
	for _, p := range phones {
		fmt.Fprintf(&b, "g_%s %s\n", strings.ToLower(p), p)
	}
	return b.Bytes(), sc.Err()
}

func grammar() []byte {
	g := make([]string, len(phones))
	for i, p := range phones {
		g[i] = "g_" + strings.ToLower(p)
	}
	return []byte("#JSGF V1.0;\ngrammar answer;\n" +
		"public <answer> = [<garbage>+] (<yes> | <no>) [<garbage>+] | <garbage>+;\n" +
		"<yes> = " + strings.Join(answers["yes"], " | ") + ";\n" +
		"<no> = " + strings.Join(answers["no"], " | ") + ";\n" +
		"<garbage> = " + strings.Join(g, " | ") + ";\n")
}

// Transcribe returns the answer words heard in audio ("" for none). The recogniser is English only:
// language is ignored.
func (s *STT) Transcribe(ctx context.Context, audio []int16, language string) (string, error) {
	f, err := os.CreateTemp(s.dir, "utt-*.wav")
	if err != nil {
		return "", &voice.SpeechError{Engine: "pocketsphinx", Err: err}
	}
	defer os.Remove(f.Name())
	_, err = f.Write(voice.EncodeWAV(audio, voice.SampleRate))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", &voice.SpeechError{Engine: "pocketsphinx", Err: err}
	}
	cmd := exec.CommandContext(ctx, s.cfg.Path, "-infile", f.Name(), "-hmm", s.cfg.Model, "-dict", s.path("answer.dict"),
		"-jsgf", s.path("answer.gram"), "-wip", "1e-3", "-time", "yes", "-logfn", os.DevNull)
	cmd.WaitDelay = time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", &voice.SpeechError{Engine: "pocketsphinx", Err: fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))}
	}
	return heard(out.String()), nil
}

// maxOther bounds what may be said besides the answer words (from the first word to the last, pauses
// included): about one more word. The garbage loop absorbs what is not an answer, but in a long unrelated
// sentence a short stretch can still match "yes"; an answer buried in other speech is no answer.
const maxOther = 0.9 // seconds

// heard reads pocketsphinx's -time output ("word start end confidence" per line, after the hypothesis)
// and returns the answer words, or "" when there are none or too much else was said.
func heard(out string) string {
	var words []string
	var answer float64
	first, last := -1.0, -1.0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		start, err1 := strconv.ParseFloat(f[1], 64)
		end, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil || end < start || f[0] == "(NULL)" || strings.HasPrefix(f[0], "<") {
			continue
		}
		if first < 0 {
			first = start
		}
		last = end
		if !strings.HasPrefix(f[0], "g_") {
			words = append(words, strings.TrimSuffix(f[0], "(2)"))
			answer += end - start
		}
	}
	if len(words) == 0 || (last-first)-answer > maxOther {
		return ""
	}
	return strings.Join(words, " ")
}
