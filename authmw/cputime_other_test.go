//go:build !linux

package authmw

import "time"

func threadCPU() (time.Duration, bool) { return 0, false }
