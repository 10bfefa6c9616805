package httpapi

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/web"
)

func TestConsole(t *testing.T) {
	t.Parallel()
	files := fstest.MapFS{
		"index.html":         {Data: []byte(`<!doctype html><script type="module" src="/assets/app-abc.js"></script>`)},
		"assets/app-abc.js":  {Data: []byte(strings.Repeat("console.log('it0');\n", 100))},
		"assets/app-abc.css": {Data: []byte("body{}")},
	}
	s := New(Deps{Console: files})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	get := func(t *testing.T, path string, headers ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		// A bare transport: no automatic gzip negotiation, so the test sees what the server sent.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// Ensure every console response forbids framing and inline script.
	t.Run("SecurityHeaders", func(t *testing.T) {
		for _, p := range []string{"/", "/chat", "/assets/app-abc.js"} {
			resp, _ := get(t, p)
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("%s: CSP %q", p, csp)
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: headers %v", p, resp.Header)
			}
		}
	})
	// Ensure client-side routes get index.html, never cached, and hashed assets are cached for good.
	t.Run("FallbackAndCache", func(t *testing.T) {
		resp, body := get(t, "/orders/SO-1")
		if resp.StatusCode != 200 || !strings.Contains(body, "/assets/app-abc.js") || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("fallback: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("fallback content type %q", ct)
		}
		resp, _ = get(t, "/assets/app-abc.css")
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
			t.Fatalf("asset: %d %v", resp.StatusCode, resp.Header)
		}
		resp, body = get(t, "/assets/app-old.js")
		if resp.StatusCode != 404 || strings.Contains(body, "<script") {
			t.Errorf("a missing asset answered %d, want 404 (not the page)", resp.StatusCode)
		}
		resp, _ = get(t, "/assets/app-abc.css", "If-None-Match", resp.Header.Get("ETag"))
		etag := resp.Header.Get("ETag")
		if resp, _ = get(t, "/assets/app-abc.css", "If-None-Match", etag); resp.StatusCode != 304 {
			t.Errorf("If-None-Match %s: %d, want 304", etag, resp.StatusCode)
		}
	})
	// Ensure text assets are sent gzipped to clients that accept it, and intact.
	t.Run("Gzip", func(t *testing.T) {
		resp, body := get(t, "/assets/app-abc.js", "Accept-Encoding", "gzip, br")
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("not gzipped: %v", resp.Header)
		}
		zr, err := gzip.NewReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if string(plain) != string(files["assets/app-abc.js"].Data) {
			t.Error("gzipped body differs from the file")
		}
	})
	// Ensure an unknown API path is a JSON 404, not the console page.
	t.Run("APINotFound", func(t *testing.T) {
		for _, p := range []string{"/api/v1/nope", "/ws/nope", "/nope", "/chat.php"} {
			resp, body := get(t, p)
			if resp.StatusCode != 404 || !strings.Contains(body, `"not_found"`) {
				t.Errorf("%s: %d %s", p, resp.StatusCode, body)
			}
		}
	})
}

// Ensure the committed build is servable: index.html exists and loads only same-origin module scripts.
func TestConsoleDist(t *testing.T) {
	t.Parallel()
	s := New(Deps{Console: web.Dist()})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `<script type="module"`) || strings.Contains(body, "<script>") {
		t.Fatalf("GET /: %d %s", rec.Code, body)
	}
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		b := setupApp(t, open)
		_, viewerTok := b.newUser(b.adminTok, "viewer@refresh.example", auth.RoleViewer)

		// Ensure a valid token buys a fresh one that works.
		t.Run("OK", func(t *testing.T) {
			r := b.do("POST", "/api/v1/auth/refresh", viewerTok, nil)
			if r.status != 200 {
				t.Fatalf("refresh: %d %s", r.status, r.raw)
			}
			fresh, _ := r.body["access_token"].(string)
			if me := b.do("GET", "/api/v1/auth/me", fresh, nil); me.status != 200 || me.body["role"] != "viewer" {
				t.Fatalf("me with the fresh token: %d %s", me.status, me.raw)
			}
		})
		// Ensure no token, a bad token or an API key is refused.
		t.Run("ErrUnauthenticated", func(t *testing.T) {
			if r := b.do("POST", "/api/v1/auth/refresh", "", nil); r.status != 401 {
				t.Errorf("no token: %d", r.status)
			}
			if r := b.do("POST", "/api/v1/auth/refresh", "not-a-token", nil); r.status != 401 {
				t.Errorf("bad token: %d", r.status)
			}
			k := b.do("POST", "/api/v1/auth/api-keys", b.adminTok, map[string]string{"name": "ci"})
			key, _ := k.body["key"].(string)
			if r := b.do("POST", "/api/v1/auth/refresh", key, nil); r.status != 400 {
				t.Errorf("API key: %d %s", r.status, r.raw)
			}
		})
	})
}
