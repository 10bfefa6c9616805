package voicetest

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/coder/websocket"

	"github.com/it0/it0/internal/voice"
)

// Turn speaks one utterance on an open /ws/voice connection — 400 ms of a voiced sound, then 700 ms of
// quiet, in 20 ms chunks of PCM s16le 16 kHz — and reads until the agent's transcript arrives. It returns
// what the gateway heard, what the agent answered and how many audio frames were spoken back.
func Turn(ctx context.Context, t testing.TB, conn *websocket.Conn) (user, reply string, audio int) {
	t.Helper()
	var pcm []int16
	for i := range 6400 {
		pcm = append(pcm, int16(8000*math.Sin(2*math.Pi*150*float64(i)/16000)))
	}
	pcm = append(pcm, make([]int16, 11200)...)
	for i := 0; i < len(pcm); i += 320 {
		if err := conn.Write(ctx, websocket.MessageBinary, voice.PCMToBytes(nil, pcm[i:i+320])); err != nil {
			t.Fatal(err)
		}
	}
	for reply == "" {
		typ, msg, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read the voice stream: %v (user %q, audio %d)", err, user, audio)
		}
		if typ == websocket.MessageBinary {
			audio++
			continue
		}
		var ctl voice.Control
		json.Unmarshal(msg, &ctl)
		switch {
		case ctl.Type == "transcript" && ctl.Role == "user":
			user = ctl.Text
		case ctl.Type == "transcript" && ctl.Role == "agent":
			reply = ctl.Text
		}
	}
	return user, reply, audio
}
