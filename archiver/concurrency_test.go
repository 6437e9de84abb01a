package archiver_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// slowStore is a real store whose writes take at least delay (an object
// store's round trip), that counts the writes in flight, and whose writes
// under the prefix in failing fail (one tenant's objects unreachable).
type slowStore struct {
	objstore.Store
	delay    time.Duration
	mu       sync.Mutex
	inFlight int
	maxIn    int
	failing  atomic.Pointer[string]
	failed   atomic.Int64
}

func (s *slowStore) write(key string, put func() error) error {
	s.mu.Lock()
	s.inFlight++
	s.maxIn = max(s.maxIn, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	time.Sleep(s.delay)
	if p := s.failing.Load(); p != nil && strings.HasPrefix(key, *p) {
		s.failed.Add(1)
		return errOutage
	}
	return put()
}

func (s *slowStore) Put(ctx context.Context, key string, r io.Reader) error {
	return s.write(key, func() error { return s.Store.Put(ctx, key, r) })
}

func (s *slowStore) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	return s.write(key, func() error { return s.Store.PutIfAbsent(ctx, key, r) })
}

func (s *slowStore) maxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxIn
}

// partitionTenants returns n tenant names of partition p (of 4).
func partitionTenants(n, p int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		t := fmt.Sprintf("t%03d", i)
		if schemas.Partition(schemas.TenantID(t), 4) == p {
			out = append(out, t)
		}
	}
	return out
}

// TestFlushCommitsTenantsConcurrently: one partition's flush of many
// tenants commits several of them at once, and commits every one.
func TestFlushCommitsTenantsConcurrently(t *testing.T) {
	base, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &slowStore{Store: base, delay: 5 * time.Millisecond}
	r := startArchiver(t, t.TempDir(), store, func(c *archiver.Config) {
		c.Partitions, c.FlushInterval, c.CommitConcurrency = []int{0}, 300*time.Millisecond, 8
	})
	tenants := partitionTenants(24, 0)
	for i, tn := range tenants {
		r.publish(t, txn(tn, 1000, []schemas.Event{insert(1, tn, i), insert(2, tn, i+100)})[0])
	}
	for _, tn := range tenants {
		waitComplete(t, base, tn, 1000)
	}
	r.stop(t)
	for _, tn := range tenants {
		assertUnique(t, archivedChanges(t, base, tn), 2)
	}
	// One partition: committed one tenant after another, a single write
	// would be in flight at a time.
	if got := store.maxInFlight(); got < 2 || got > 8 {
		t.Errorf("at most %d store writes in flight during one partition's flushes, want 2 to 8 (CommitConcurrency)", got)
	}
}

// TestFlushFailingForOneTenantAcksNothing: a flush in which one tenant's
// writes fail while the others' succeed writes no watermark and
// acknowledges nothing; once the store takes the tenant's writes again,
// every change of every tenant is archived once and the watermark written.
func TestFlushFailingForOneTenantAcksNothing(t *testing.T) {
	base, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &slowStore{Store: base, delay: time.Millisecond}
	tenants := partitionTenants(12, 0)
	bad := schemas.TenantPrefix(schemas.TenantID(tenants[5]))
	store.failing.Store(&bad)
	r := startArchiver(t, t.TempDir(), store, func(c *archiver.Config) {
		c.Partitions, c.CommitConcurrency = []int{0}, 4
		c.RetryMin, c.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	})
	const lsn = schemas.LSN(2000)
	for i, tn := range tenants {
		r.publish(t, txn(tn, lsn, []schemas.Event{insert(1, tn, i)})[0])
	}
	marker := &schemas.Batch{Kind: schemas.KindMarker, CommitLSN: lsn + 1, EndLSN: lsn + 9, CommitTime: time.Now().UTC(), Final: true}
	r.publish(t, marker)

	waitFailed(t, &store.failed, 3, "the archiver did not retry the failing tenant")
	wms, err := catalog.ReadWatermarks(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	if wm := wms[0]; wm != nil {
		t.Errorf("watermark written while a tenant of the flush failed: %+v", wm)
	}
	cons, err := r.bus.JetStream().Consumer(t.Context(), r.bus.Config().Stream, "tenantwal-archiver-p0000")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 0 {
		t.Errorf("acknowledged up to %d while a tenant of the flush failed", info.AckFloor.Stream)
	}

	store.failing.Store(nil)
	for _, tn := range tenants {
		waitComplete(t, base, tn, lsn)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		wms, err := catalog.ReadWatermarks(t.Context(), base)
		if err == nil && wms[0] != nil && wms[0].CommitLSN == lsn+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watermark not written after the store recovered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.stop(t)
	for _, tn := range tenants {
		assertUnique(t, archivedChanges(t, base, tn), 1)
	}
}
