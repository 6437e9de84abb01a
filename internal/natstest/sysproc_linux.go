package natstest

import "syscall"

// sysProcAttr kills the server if the test binary dies without cleanup (a
// test timeout panics past t.Cleanup). Pdeathsig fires when the thread that
// started the child exits, which the Go runtime does only for goroutines
// that exit while locked to their thread.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
