package sphinx

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/it0/it0/internal/voice"
	"github.com/it0/it0/internal/voice/espeak"
)

// engines returns espeak-ng and pocketsphinx, skipping when they are not installed (failing under CI).
func engines(t *testing.T) (*espeak.TTS, *STT) {
	t.Helper()
	tts, err := espeak.New(espeak.Config{})
	if err == nil {
		var stt *STT
		if stt, err = New(Config{}); err == nil {
			t.Cleanup(func() { stt.Close() })
			return tts, stt
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI needs espeak-ng and pocketsphinx: %v", err)
	}
	t.Skipf("offline speech engines not installed: %v", err)
	return nil, nil
}

func TestHearsAnswers(t *testing.T) {
	t.Parallel()
	tts, stt := engines(t)
	// What espeak-ng's default English voice says, pocketsphinx hears well enough both at 16 kHz and
	// through the phone's μ-law 8 kHz. Other answers (cancel, go ahead) are often unclear through the
	// phone, which only means they are asked again: the invariant is that nothing is heard as the
	// opposite answer, and unrelated speech as no answer at all.
	for _, tc := range []struct {
		said string
		want voice.IntentKind
	}{
		{"yes approve", voice.Approve},
		{"no reject", voice.Reject},
		{"the weather is nice today", voice.Unclear},
		{"please restart the database server", voice.Unclear},
	} {
		t.Run(tc.said, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pcm, err := tts.Synthesize(ctx, tc.said, "en")
			if err != nil {
				t.Fatal(err)
			}
			// Through the phone: 8 kHz μ-law and back.
			phone := voice.MulawDecode(nil, voice.MulawEncode(nil, voice.Resample(pcm, voice.SampleRate, voice.PhoneSampleRate)))
			for name, audio := range map[string][]int16{"16k": pcm, "phone": voice.Resample(phone, voice.PhoneSampleRate, voice.SampleRate)} {
				text, err := stt.Transcribe(ctx, audio, "en")
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s %s: %q", tc.said, name, text)
				if got := voice.ParseIntent(text).Kind; got != tc.want {
					t.Errorf("%s: heard %q (%v), want %v", name, text, got, tc.want)
				}
			}
		})
	}
}

func TestMissingBinary(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("pocketsphinx_continuous"); err != nil {
		t.Skip("pocketsphinx not installed")
	}
	if _, err := New(Config{Path: "/nonexistent/pocketsphinx"}); err == nil {
		t.Fatal("New with a missing binary succeeded")
	}
	if _, err := New(Config{Model: t.TempDir()}); err == nil {
		t.Fatal("New with a missing model succeeded")
	}
}

func TestHeard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, out, want string }{
		{"Answer", "yes g_aa g_p\n(NULL) -0.010 -0.010 1.000000\nyes 0.000 0.250 1.000000\ng_aa 0.260 0.300 1.000000\ng_p 0.310 0.390 1.000000\n<sil> 0.740 1.130 1.000000\n", "yes"},
		// Ensure a "yes" inside a long unrelated sentence is no answer.
		{"Buried", "g_aa yes g_aa g_uh\n<sil> 0.000 0.540 1.000000\ng_aa 0.550 0.680 1.000000\n<sil> 0.690 1.380 1.000000\nyes 1.390 1.640 1.000000\ng_aa 1.650 1.760 1.000000\ng_uh 1.770 2.020 1.000000\n", ""},
		{"Garbage", "g_dh\n<sil> 0.000 0.530 1.000000\ng_dh 0.540 0.940 1.000000\n", ""},
		{"Empty", "", ""},
		{"Junk", "yes x y z\nyes a b c\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := heard(tc.out); got != tc.want {
				t.Fatalf("heard = %q, want %q", got, tc.want)
			}
		})
	}
}
