//go:build !linux

package s3test

import "syscall"

// sysProcAttr: without a parent-death signal the server outlives a crashed
// test binary until killed.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// processAlive is conservative: stale dirs are only removed on Linux.
func processAlive(int) bool { return true }
