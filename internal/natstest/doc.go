// Package natstest runs NATS JetStream servers for tests: in-process with
// RunJetStream, or as a separate nats-server process with StartProcess when a
// test needs to SIGKILL it (Proc.Kill) and restart it on the same port and
// store (Proc.Restart). Use it only from _test.go files.
//
// StartProcess runs the binary named by TENANTWAL_NATS_SERVER, else
// ${XDG_CACHE_HOME:-~/.cache}/tenantwal/bin/nats-server (os.UserCacheDir)
// when it reports the version of github.com/nats-io/nats-server/v2 pinned in
// go.mod, else builds that version there first (about 30 s cold) with
// "go build github.com/nats-io/nats-server/v2" from the module root, under a
// file lock so that parallel test binaries build it once.
package natstest
