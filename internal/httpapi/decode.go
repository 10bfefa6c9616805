package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/it0/it0/internal/errs"
)

// maxBody bounds request bodies; larger ones get 413 before anything is decoded.
const maxBody = 1 << 20

// validator is implemented by request types that check themselves after decoding.
type validator interface{ Validate() error }

// decode reads r's JSON body into v strictly: one object, no unknown fields, within maxBody, then runs
// v.Validate when v has it. Every failure is an errs.Invalid or errs.TooLarge error that says what to fix.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	// Any Content-Type is read as JSON (curl -d sends a form type); only multipart bodies are refused,
	// since they are certainly not JSON.
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		return errs.New(errs.Invalid, "multipart bodies are not supported").WithHint("send application/json")
	}
	raw, err := readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return errs.New(errs.Invalid, "request body must hold a single JSON object")
	}
	if val, ok := v.(validator); ok {
		return val.Validate()
	}
	return nil
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return errs.New(errs.TooLarge, "request body is larger than %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		return errs.New(errs.Invalid, "request body is empty").WithHint("send a JSON object")
	case errors.As(err, &syntax):
		return errs.New(errs.Invalid, "malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.New(errs.Invalid, "malformed JSON: the body ends early")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return errs.New(errs.Invalid, "request body must be a JSON object, not %s", typ.Value)
		}
		return errs.Invalidf(field, "field %q must be %s, not %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return errs.Invalidf(strings.Trim(name, `"`), "unknown field %s", name).WithHint("check the field names in /api/v1/openapi.json")
	}
	return errs.New(errs.Invalid, "malformed JSON: %v", err)
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "a number"
}

// queryInt reads an integer query parameter within [min, max], or def when absent.
func queryInt(r *http.Request, name string, def, min, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, errs.Invalidf(name, "query parameter %s must be an integer from %d to %d", name, min, max)
	}
	return n, nil
}

// queryTime reads an RFC 3339 time query parameter.
func queryTime(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errs.Invalidf(name, "query parameter %s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
	}
	return t, nil
}
