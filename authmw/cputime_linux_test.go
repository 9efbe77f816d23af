package authmw

import (
	"syscall"
	"time"
	"unsafe"
)

// threadCPU is the CPU time consumed by the calling OS thread
// (CLOCK_THREAD_CPUTIME_ID): unlike wall time it does not count the time
// other processes ran, so ratios stay meaningful on a shared machine.
func threadCPU() (time.Duration, bool) {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
