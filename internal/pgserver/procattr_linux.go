package pgserver

import "syscall"

// setDeathSignal makes the kernel send the postmaster SIGQUIT (immediate
// shutdown) if the process that started it dies without stopping it, such
// as a test binary killed on timeout, so no server is left behind.
func setDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGQUIT }
