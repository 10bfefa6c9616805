package auth_test

import (
	"testing"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/auth/limittest"
)

func TestMemoryLimits(t *testing.T) {
	t.Parallel()
	limittest.Run(t, func(*testing.T) auth.LimitStore { return auth.NewMemoryLimits() })
}
