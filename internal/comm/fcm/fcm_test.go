package fcm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/fcm"
	"github.com/it0/it0/internal/vault"
)

// fakeGoogle is the OAuth token endpoint and FCM v1: the token endpoint verifies the RS256 assertion with
// the service account's public key; messages:send checks the bearer token and the message shape.
type fakeGoogle struct {
	t       *testing.T
	pub     *rsa.PublicKey
	mu      sync.Mutex
	issued  int
	fail    string // next send's error: "UNREGISTERED", "QUOTA", "UNAVAILABLE", "REVOKE"
	sent    []map[string]any
	tokenAt string // the token endpoint's URL (the expected aud)
}

func (g *fakeGoogle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/token":
		r.ParseForm()
		if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || !g.verify(r.PostForm.Get("assertion")) {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
			return
		}
		g.issued++
		fmt.Fprintf(w, `{"access_token":"ya29.tok%d","expires_in":3599,"token_type":"Bearer"}`, g.issued)
	case r.URL.Path == "/v1/projects/proj-1/messages:send":
		if r.Header.Get("Authorization") != fmt.Sprintf("Bearer ya29.tok%d", g.issued) || g.fail == "REVOKE" {
			g.fail = ""
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`)
			return
		}
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		g.sent = append(g.sent, body)
		switch g.fail {
		case "UNREGISTERED":
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`)
		case "QUOTA":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(429)
			fmt.Fprint(w, `{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}`)
		case "UNAVAILABLE":
			w.WriteHeader(503)
			fmt.Fprint(w, `{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`)
		default:
			fmt.Fprint(w, `{"name":"projects/proj-1/messages/0:1500415314455276%31bd1c9631bd1c96"}`)
		}
	default:
		w.WriteHeader(404)
	}
}

func (g *fakeGoogle) verify(jwt string) bool {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return false
	}
	enc := base64.RawURLEncoding
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(g.pub, crypto.SHA256, sum[:], sig) != nil {
		return false
	}
	var h, c map[string]any
	hb, _ := enc.DecodeString(parts[0])
	cb, _ := enc.DecodeString(parts[1])
	json.Unmarshal(hb, &h)
	json.Unmarshal(cb, &c)
	ok := h["alg"] == "RS256" && h["kid"] == "key-1" && c["iss"] == "it0@proj-1.iam.gserviceaccount.com" &&
		c["scope"] == "https://www.googleapis.com/auth/firebase.messaging" && c["aud"] == g.tokenAt
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	if !ok || exp-iat != 3600 {
		g.t.Errorf("assertion header %v claims %v", h, c)
		return false
	}
	return true
}

func setup(t *testing.T) (*fakeGoogle, *fcm.Client) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	g := &fakeGoogle{t: t, pub: &key.PublicKey}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	g.tokenAt = srv.URL + "/token"
	sa, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "proj-1", "private_key_id": "key-1",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "client_email": "it0@proj-1.iam.gserviceaccount.com",
		"token_uri": srv.URL + "/token"})
	path := filepath.Join(t.TempDir(), "sa.json")
	os.WriteFile(path, sa, 0o600)
	c := fcm.New(fcm.Config{CredentialsFile: path, BaseURL: srv.URL})
	if err := c.Available(); err != nil {
		t.Fatal(err)
	}
	return g, c
}

var msg = comm.OutboundMessage{To: "device-token-1", Subject: "L3 approval needed", Text: "restart nginx on web-1",
	Data:    map[string]string{"kind": "escalation", "approval_id": "42"},
	Actions: []comm.Action{{Label: "Approve", Data: "y:42", URL: "https://it0.example/a/y"}, {Label: "Reject", Data: "n:42", URL: "https://it0.example/a/n"}}}

func TestSend(t *testing.T) {
	t.Parallel()
	g, c := setup(t)
	ctx := context.Background()
	// Ensure the push carries the token, notification, string data and HIGH priority; the OAuth token is reused.
	for i := 0; i < 2; i++ {
		id, err := c.Send(ctx, msg)
		if err != nil || !strings.HasPrefix(id, "projects/proj-1/messages/") {
			t.Fatalf("send: %q %v", id, err)
		}
	}
	if g.issued != 1 {
		t.Errorf("token exchanged %d times, want 1", g.issued)
	}
	m := g.sent[0]["message"].(map[string]any)
	data := m["data"].(map[string]any)
	android := m["android"].(map[string]any)
	if m["token"] != "device-token-1" || m["notification"].(map[string]any)["title"] != "L3 approval needed" ||
		data["approval_id"] != "42" || data["approve_url"] != "https://it0.example/a/y" || android["priority"] != "HIGH" {
		t.Errorf("message %v", m)
	}
	// Ensure a revoked token is replaced once and the send goes through.
	g.fail = "REVOKE"
	if _, err := c.Send(ctx, msg); err != nil || g.issued != 2 {
		t.Errorf("after 401: %v (tokens %d)", err, g.issued)
	}
	// Ensure UNREGISTERED is permanent, QUOTA_EXCEEDED temporary with Retry-After, UNAVAILABLE temporary.
	g.fail = "UNREGISTERED"
	if _, err := c.Send(ctx, msg); isTemp(err) || !errors.Is(err, comm.ErrAddressGone) || !strings.Contains(err.Error(), "UNREGISTERED") {
		t.Errorf("404: %v", err)
	}
	g.fail = "QUOTA"
	if _, err := c.Send(ctx, msg); !isTemp(err) {
		t.Errorf("429: %v", err)
	} else if _, after := comm.IsTemporary(err); after != 30*time.Second {
		t.Errorf("Retry-After: %v", after)
	}
	g.fail = "UNAVAILABLE"
	if _, err := c.Send(ctx, msg); !isTemp(err) {
		t.Errorf("503: %v", err)
	}
}

func isTemp(err error) bool { t, _ := comm.IsTemporary(err); return t }

// Ensure bad credentials make the channel unavailable with a reason, never the key.
func TestCredentials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, json, want string }{
		{"None", "", "IT0_FCM_CREDENTIALS_FILE"},
		{"NotJSON", "{", "not a service-account"},
		{"NoKey", `{"project_id":"p","client_email":"e"}`, "lacks"},
		{"NotPEM", `{"project_id":"p","client_email":"e","private_key":"secret-bytes"}`, "not PEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fcm.New(fcm.Config{Credentials: vaultSecret(tc.json)}).Available()
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret-bytes") {
				t.Errorf("got %v", err)
			}
		})
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", slog.Any("cfg", fcm.Config{Credentials: `{"private_key":"secret-bytes"}`}))
	if strings.Contains(buf.String(), "secret-bytes") {
		t.Errorf("credentials leaked: %s", buf.String())
	}
}

func vaultSecret(s string) vault.Secret { return vault.Secret(s) }
