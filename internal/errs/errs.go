// Package errs defines IT0's application error: a machine code, a message for people and an optional hint
// that says how to fix the problem. Contexts return these; the HTTP layer maps codes to statuses in one place.
package errs

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Code classifies an application error. Callers branch on it with errors.As or CodeOf.
type Code string

// Error codes. The HTTP layer owns the mapping to statuses (httpapi/errors.go).
const (
	Invalid       Code = "invalid"        // the request is malformed or fails validation
	NotFound      Code = "not_found"      // the resource does not exist (or belongs to another tenant)
	Conflict      Code = "conflict"       // the resource exists, is in use, or was already decided
	Unauthorized  Code = "unauthorized"   // no or bad credentials
	Forbidden     Code = "forbidden"      // authenticated but not allowed
	QuotaExceeded Code = "quota_exceeded" // a tenant quota would be exceeded
	RateLimited   Code = "rate_limited"   // too many attempts; retry later
	TooLarge      Code = "too_large"      // request body over the limit
	Unavailable   Code = "unavailable"    // a dependency is missing or down
	Internal      Code = "internal"       // anything else; never shown in detail
)

// Error is an application error with a code, a human message and an optional hint.
type Error struct {
	Code    Code
	Message string
	Hint    string
	Field   string // the request field at fault, when there is one
	// RetryAfter, for RateLimited, says when to try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Hint != "" {
		return e.Message + " (" + e.Hint + ")"
	}
	return e.Message
}

// New returns an Error with code and a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithHint returns a copy of e carrying hint.
func (e *Error) WithHint(hint string) *Error {
	c := *e
	c.Hint = hint
	return &c
}

// Invalidf is a validation error naming field.
func Invalidf(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// withField prefixes an error's message with its field when the message does not name it already, so a
// joined message names every bad field.
func withField(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Field != "" && !strings.Contains(e.Message, e.Field) {
		return e.Field + ": " + err.Error()
	}
	return err.Error()
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// Join combines validation errors into one Invalid error whose message lists each of them.
// It returns nil when list holds no error, and the error itself when it holds one.
func Join(list ...error) error {
	var kept []error
	for _, err := range list {
		if err != nil {
			kept = append(kept, err)
		}
	}
	switch len(kept) {
	case 0:
		return nil
	case 1:
		return kept[0]
	}
	var msgs []string
	for _, err := range kept {
		msgs = append(msgs, withField(err))
	}
	return &Error{Code: Invalid, Message: strings.Join(msgs, "; ")}
}
