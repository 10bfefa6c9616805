package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/voice/voicetest"
)

// TestVoiceStatus: GET /api/v1/voice/status tells the console whether to show its voice buttons.
func TestVoiceStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		engines bool
		want    string
	}{
		{"OK", true, `{"available":true}`},
		{"NoEngines", false, `"available":false,"reason":"voice is not configured`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := appKnobs{engines: []agent.Engine{&scriptEngine{name: agent.EngineClaudeAPI}}, voice: AppVoice{Frame: 2 * time.Millisecond}}
			if tc.engines {
				k.env = speechEnv(voicetest.SpeechServer(t, "yes"))
			}
			b := setupAppWith(t, storetest.OpenSQLite, k)
			_, tok := b.newTenant("voicest")
			// Ensure the answer says whether voice works, and why not.
			if r := b.do("GET", "/api/v1/voice/status", tok, nil); r.status != 200 || !strings.Contains(r.raw, tc.want) {
				t.Errorf("status: %d %s, want %s", r.status, r.raw, tc.want)
			}
			// Ensure it needs a signed-in user.
			if r := b.do("GET", "/api/v1/voice/status", "", nil); r.status != 401 {
				t.Errorf("without a token: %d", r.status)
			}
		})
	}
}
