package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
)

// Every string a request carries is checked here before any handler sees it: path parameters, query
// parameters, form values, the id headers and JSON bodies. NUL bytes and invalid UTF-8 are refused outright
// (PostgreSQL cannot store them and answers "invalid byte sequence", which used to surface as a 500), and
// ids must have an id's shape, so a malformed id never reaches a query.

// maxParam bounds one path or query parameter.
const maxParam = 4096

var (
	uuidPattern          = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	standingOrderPattern = regexp.MustCompile(`^SO-\d{8}-\d{3,}$`)
	// runbookNamePattern: runbooks are also addressed by name (the shipped ones: disk-cleanup, …).
	runbookNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	wildcardPattern    = regexp.MustCompile(`\{([A-Za-z_]+)(\.\.\.)?\}`)
)

// idQueryParams are the query parameters that hold ids of IT0 records.
var idQueryParams = map[string]bool{"server_id": true, "session_id": true, "cluster_id": true, "escalation_id": true,
	"check_id": true, "rule_id": true, "contact_id": true, "order_id": true, "task_id": true, "user_id": true,
	"approval_id": true, "source_id": true}

// checkText refuses NUL and other control bytes, invalid UTF-8 and over-long values in a parameter.
func checkText(kind, name, v string) error {
	switch {
	case !utf8.ValidString(v):
		return errs.Invalidf(name, "%s %s is not valid UTF-8", kind, name).WithHint("percent-encode UTF-8 text")
	case len(v) > maxParam:
		return errs.Invalidf(name, "%s %s is longer than %d bytes", kind, name, maxParam)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return errs.Invalidf(name, "%s %s contains a control character (such as NUL or a newline)", kind, name)
	}
	return nil
}

// validID reports whether v has the shape of a record id: a UUID, or SO-YYYYMMDD-NNN for standing orders,
// vs_<UUID> for voice sessions, or (runbooks only) a runbook name.
func validID(routePath, v string) bool {
	if uuidPattern.MatchString(v) || standingOrderPattern.MatchString(v) {
		return true
	}
	if rest, ok := strings.CutPrefix(v, "vs_"); ok && strings.HasPrefix(routePath, "/api/v1/voice/") {
		return uuidPattern.MatchString(rest)
	}
	return strings.HasPrefix(routePath, "/api/v1/ops/runbooks/") && runbookNamePattern.MatchString(v)
}

func errBadID(name, v string) error {
	return errs.New(errs.NotFound, "nothing has %s %q: ids are UUIDs such as 3f2b8c1e-5d4a-4e7b-9c2d-1a2b3c4d5e6f, "+
		"SO-YYYYMMDD-NNN for standing orders or vs_<UUID> for voice sessions", name, v).WithHint("take ids from the list endpoints")
}

// checkParams validates r's path parameters (by routePath's wildcards), query parameters, form values and
// id headers. It runs before authentication, for every route.
func checkParams(r *http.Request, routePath string) error {
	for _, m := range wildcardPattern.FindAllStringSubmatch(routePath, -1) {
		name := m[1]
		v := r.PathValue(name)
		if err := checkText("path parameter", name, v); err != nil {
			return err
		}
		if name == "id" && !validID(routePath, v) {
			return errBadID(name, v)
		}
	}
	for name, vs := range r.URL.Query() {
		if err := checkText("query parameter", "name", name); err != nil {
			return err
		}
		for _, v := range vs {
			if err := checkText("query parameter", name, v); err != nil {
				return err
			}
			if v != "" && idQueryParams[name] && !uuidPattern.MatchString(v) && !standingOrderPattern.MatchString(v) {
				return errBadID(name, v)
			}
		}
	}
	if h := r.Header.Get("X-Tenant-Id"); h != "" && !tenant.ValidID(h) {
		return errs.New(errs.Invalid, "X-Tenant-Id %q is not a tenant id", h).WithHint("take it from GET /api/v1/auth/tenants")
	}
	if h := r.Header.Get(sessionHeader); h != "" && !uuidPattern.MatchString(h) {
		return errs.New(errs.Invalid, "%s %q is not a session id (a UUID)", sessionHeader, h)
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err != nil {
			return errs.New(errs.Invalid, "malformed form body: %v", err)
		}
		for name, vs := range r.PostForm {
			for _, v := range vs {
				if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
					return errs.Invalidf(name, "form field %s holds a NUL byte or invalid UTF-8", name)
				}
			}
		}
	}
	return nil
}

// readBody reads r's body within maxBody and refuses invalid UTF-8 and NUL characters (\u0000 in JSON),
// which no field of IT0 accepts.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, decodeError(err)
	}
	return raw, checkBody(raw)
}

func checkBody(raw []byte) error {
	if !utf8.Valid(raw) {
		return errs.New(errs.Invalid, "request body is not valid UTF-8").WithHint("send UTF-8 JSON")
	}
	if !bytes.Contains(raw, []byte(`\u0000`)) { // the only way a JSON text can hold a NUL
		return nil
	}
	// The escape may be a literal backslash followed by "u0000"; walk the tokens to be sure.
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil { // a syntax error is reported by the real decode
			return nil
		}
		if s, ok := tok.(string); ok && strings.ContainsRune(s, 0) {
			return errs.New(errs.Invalid, "request body holds a NUL character (\\u0000) in a string").
				WithHint("remove it; no field accepts it")
		}
	}
}
