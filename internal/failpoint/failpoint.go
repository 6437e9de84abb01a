// Package failpoint kills the process at a named point of the code, so that
// tests can SIGKILL a real tenantwal process at an exact moment instead of
// at a random one.
//
// Hit(name) does nothing unless the environment variable TENANTWAL_FAILPOINT
// names that point when the process starts:
//
//	TENANTWAL_FAILPOINT=archiver-before-manifest      the first hit kills
//	TENANTWAL_FAILPOINT=capture-published=3           the third hit kills
//
// A firing failpoint writes one line to stderr and sends SIGKILL to its own
// process: no deferred function, no flush, no clean shutdown runs, exactly
// as with kill -9. The variable is read once; with it unset Hit costs one
// atomic load.
//
// The points:
//
//	capture-published         capture/publisher.go: a batch (a chunk of a
//	                          transaction) was handed to JetStream, before its
//	                          PubAck (kill while a transaction is published)
//	capture-txn-acked         capture/publisher.go: every message of a
//	                          transaction was PubAck'ed, before any marker
//	                          or slot confirmation covers it
//	archiver-before-manifest  archiver: a manifest entry's Parquet objects
//	                          (at least one) are in the store, the entry is
//	                          not (orphans)
//	archiver-before-ack       archiver: a flush's manifest entries (at
//	                          least one) and watermark are written, its
//	                          JetStream messages not yet acknowledged
//	                          (redelivery of archived changes)
package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Env is the environment variable that arms a failpoint.
const Env = "TENANTWAL_FAILPOINT"

// The failpoints compiled into tenantwal.
const (
	CapturePublished       = "capture-published"
	CaptureTxnAcked        = "capture-txn-acked"
	ArchiverBeforeManifest = "archiver-before-manifest"
	ArchiverBeforeAck      = "archiver-before-ack"
)

var (
	armed atomic.Bool // set once, by init, when Env names a point
	point string      // the armed point
	nth   int64       // the hit that kills (1-based)
	hits  atomic.Int64
	once  sync.Once
)

func init() {
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	name, n, ok := strings.Cut(v, "=")
	nth = 1
	if ok {
		k, err := strconv.ParseInt(n, 10, 64)
		if err != nil || k < 1 {
			fmt.Fprintf(os.Stderr, "%s=%q: the hit count must be a positive integer; failpoint disabled\n", Env, v)
			return
		}
		nth = k
	}
	point = name
	armed.Store(true)
}

// Hit kills the process with SIGKILL if name is the armed failpoint and this
// is its armed hit; otherwise it returns at once.
func Hit(name string) {
	if !armed.Load() || name != point {
		return
	}
	if hits.Add(1) != nth {
		return
	}
	once.Do(func() {
		fmt.Fprintf(os.Stderr, "failpoint %s: hit %d, killing process %d with SIGKILL\n", name, nth, os.Getpid())
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is delivered asynchronously; never return
	})
}
