package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/it0/it0/internal/store"
)

// TestMalformedInput sends NUL bytes, invalid UTF-8, control characters and ids of the wrong shape to
// every route, on both backends: each must get a 4xx, never reach the database (PostgreSQL refuses NUL with
// a 500-causing error), never a 5xx.
func TestMalformedInput(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		b := setupApp(t, open)
		// The probe the issue names, first.
		if r := b.do("GET", "/api/v1/monitor/checks/%00", b.adminTok, nil); r.status != 400 || !strings.Contains(r.errMessage(), "control character") {
			t.Errorf("GET /api/v1/monitor/checks/%%00: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", "/api/v1/inventory/servers/nope", b.adminTok, nil); r.status != 404 || !strings.Contains(r.errMessage(), "UUID") {
			t.Errorf("malformed id: %d %s", r.status, r.raw)
		}
		for _, rt := range b.srv.routes {
			if !strings.Contains(rt.path, "{") {
				continue
			}
			for _, probe := range []string{"%00", "%ff%fe", "a%0Ab", "nope", strings.Repeat("x", 5000)} {
				path := wildcardPattern.ReplaceAllString(rt.path, probe)
				r := b.do(rt.method, path, b.adminTok, "{}")
				if r.status >= 500 || r.status < 400 {
					t.Errorf("%s %s: %d %s", rt.method, path, r.status, r.raw)
				}
			}
		}
		// Ensure query parameters and bodies are checked on every route without a path parameter.
		for _, rt := range b.srv.routes {
			if strings.Contains(rt.path, "{") || rt.public {
				continue
			}
			for _, q := range []string{"?status=%00", "?server_id=nope", "?session_id=%ff", "?x=a%0Db"} {
				if r := b.do(rt.method, rt.path+q, b.adminTok, "{}"); r.status != 400 && r.status != 404 {
					t.Errorf("%s %s%s: %d %s", rt.method, rt.path, q, r.status, r.raw)
				}
			}
			if rt.req == nil || rt.method == http.MethodGet {
				continue
			}
			for name, body := range map[string]string{"NUL": `{"name":"a\u0000b","email":"x\u0000@y.z"}`, "UTF8": "{\"name\":\"a\xff\"}"} {
				if r := b.do(rt.method, rt.path, b.adminTok, body); r.status != 400 {
					t.Errorf("%s %s with %s body: %d %s", rt.method, rt.path, name, r.status, r.raw)
				}
			}
		}
		// Ensure an escaped backslash before u0000 is ordinary text, not a NUL.
		r := b.do("POST", "/api/v1/auth/users", b.adminTok, `{"email":"lit@example.com","name":"a\\u0000b","password":"password-123","role":"viewer"}`)
		if r.status != 201 || r.body["name"] != `a\u0000b` {
			t.Errorf("literal backslash-u0000: %d %s", r.status, r.raw)
		}
		// Ensure sign-in with a NUL in the email is a plain failure, not a database error.
		if r := b.do("POST", "/api/v1/auth/login", "", `{"email":"root@example.com\u0000","password":"x"}`); r.status != 400 {
			t.Errorf("login with NUL: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", "/api/v1/auth/me", b.adminTok, nil, "X-Tenant-Id", "../../etc"); r.status != 400 {
			t.Errorf("bad X-Tenant-Id: %d %s", r.status, r.raw)
		}
	})
}

// FuzzCheckBody: whatever the bytes, checkBody does not panic, and a JSON body it accepts holds no NUL in
// any string (key or value) and is valid UTF-8.
func FuzzCheckBody(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\u0000"}`, `{"a":"\\u0000"}`, `{"\u0000":1}`, `["x","\\\u0000"]`, "{\"a\":\"\xff\"}", `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkBody(body) != nil || !json.Valid(body) {
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted invalid UTF-8: %q", body)
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			tok, err := dec.Token()
			if err != nil {
				return
			}
			if s, ok := tok.(string); ok && strings.ContainsRune(s, 0) {
				t.Fatalf("accepted a NUL: %q", body)
			}
		}
	})
}
