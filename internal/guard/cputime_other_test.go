//go:build !linux

package guard_test

import "time"

func threadCPU() (time.Duration, bool) { return 0, false }
