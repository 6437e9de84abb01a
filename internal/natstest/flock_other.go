//go:build !unix

package natstest

import "os"

// lockFile is a no-op: concurrent first builds then race, and the last
// rename wins with an identical binary.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}
