// Package tenant carries the current tenant through a context. Every data access reads it from there; a
// context without a tenant is an error, never a default.
package tenant

import (
	"context"
	"regexp"

	"github.com/it0/it0/internal/errs"
)

type ctxKey struct{}

// ErrMissing is returned when a context carries no tenant.
var ErrMissing = errs.New(errs.Internal, "no tenant in context")

// idPattern is what a tenant id may look like: it becomes a schema name and a file name, so it is strict.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidID reports whether id is usable as a tenant id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// WithID returns a context carrying tenant id.
func WithID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// ID returns the tenant in ctx, or ErrMissing.
func ID(ctx context.Context) (string, error) {
	id, _ := ctx.Value(ctxKey{}).(string)
	if id == "" {
		return "", ErrMissing
	}
	return id, nil
}

// Platform is the pseudo-tenant of platform-level records (tenant lifecycle, logins that match no user).
// It is not a valid tenant id, so it can never collide with a real tenant.
const Platform = "_platform"
