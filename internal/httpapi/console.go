package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
)

// consoleCSP allows only the console's own files and its own origin: no inline script or style, no other
// origin, no framing. 'self' in connect-src covers ws:/wss: to the same host (CSP level 3).
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; worker-src 'self'; manifest-src 'self'; media-src 'self' blob:; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// consolePages are the first path segments of the console's own routes (web/src/app.tsx), answered with
// index.html so that a reload or a shared link opens the page.
var consolePages = map[string]bool{"": true, "chat": true, "approvals": true, "orders": true, "fleet": true,
	"monitoring": true, "escalations": true, "audit": true, "settings": true}

// consoleFile is one built file, read and compressed once.
type consoleFile struct {
	body, gz    []byte
	contentType string
	etag        string
	immutable   bool // content-hashed name: cache forever
}

// consoleHandler serves the built web console from files: a file by its path, anything else (the
// console's own routes such as /chat) as index.html so the client-side router takes over. Paths under
// /api/ and /ws/ never fall back: an unknown endpoint is a JSON 404, not a page.
func (s *Server) consoleHandler(files fs.FS) (http.Handler, error) {
	byPath := map[string]*consoleFile{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		f := &consoleFile{body: b, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
			contentType: mime.TypeByExtension(path.Ext(p)), immutable: strings.HasPrefix(p, "assets/")}
		if f.contentType == "" {
			f.contentType = "application/octet-stream"
		}
		if compressible(f.contentType) && len(b) > 512 {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(b)
			zw.Close()
			f.gz = buf.Bytes()
		}
		byPath["/"+p] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read console files: %w", err)
	}
	index := byPath["/index.html"]
	if index == nil {
		return nil, fmt.Errorf("read console files: index.html is missing (run make web)")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "microphone=(self), camera=(), geolocation=(), payment=()")
		p := path.Clean("/" + r.URL.Path)
		f := byPath[p]
		if f == nil {
			page, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
			if !consolePages[page] {
				// Not a console page: an unknown endpoint (/api/…, /ws/…, /metrics when it is served
				// elsewhere) or a missing asset (an old hashed name after an upgrade) is a 404, not the page.
				s.writeError(w, r, errs.New(errs.NotFound, "no endpoint %s %s", r.Method, p).
					WithHint("GET /api/v1/openapi.json lists every endpoint"))
				return
			}
			f = index
		}
		if f.immutable {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		h.Set("ETag", f.etag)
		h.Set("Content-Type", f.contentType)
		h.Add("Vary", "Accept-Encoding")
		if match := r.Header.Get("If-None-Match"); match != "" && match == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := f.body
		if f.gz != nil && acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			body = f.gz
		}
		h.Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	}), nil
}

func compressible(contentType string) bool {
	for _, t := range []string{"text/", "javascript", "json", "svg", "wasm"} {
		if strings.Contains(contentType, t) {
			return true
		}
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && !strings.Contains(strings.ReplaceAll(q, " ", ""), "q=0") {
			return true
		}
	}
	return false
}

// refresh trades the caller's valid access token for a fresh one: the console keeps its token only in
// memory and refreshes it before it expires.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) error {
	p, _ := auth.PrincipalFrom(r.Context())
	tok, err := s.Auth.Refresh(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tok)
	return nil
}

// consoleMethods lets only GET and HEAD reach the console's files.
func consoleMethods(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}
