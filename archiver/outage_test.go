package archiver_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// outageStore is a real store whose writes fail while down is set, as an
// object store does while unreachable.
type outageStore struct {
	objstore.Store
	down   atomic.Bool
	failed atomic.Int64
}

var errOutage = errors.New("object store unreachable (test outage)")

func (s *outageStore) Put(ctx context.Context, key string, r io.Reader) error {
	if s.down.Load() {
		s.failed.Add(1)
		return errOutage
	}
	return s.Store.Put(ctx, key, r)
}

func (s *outageStore) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	if s.down.Load() {
		s.failed.Add(1)
		return errOutage
	}
	return s.Store.PutIfAbsent(ctx, key, r)
}

// TestStoreOutageHoldsBacklog publishes transactions while the object store
// rejects writes: nothing is acknowledged or marked complete, the workers
// keep retrying, and once the store is back every change is archived once.
func TestStoreOutageHoldsBacklog(t *testing.T) {
	base, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &outageStore{Store: base}
	store.down.Store(true)
	b, err := bus.Open(t.Context(), bus.Config{StoreDir: t.TempDir(), Partitions: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := runArchiver(t, b, store, archiver.Config{FlushInterval: 20 * time.Millisecond, SpillDir: t.TempDir(),
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond})

	n := 0
	var last schemas.LSN
	for i := range 20 {
		last = schemas.LSN(5000 + 100*i)
		for _, tenant := range []string{"a", "b"} {
			var evs []schemas.Event
			for k := range 3 {
				n++
				evs = append(evs, insert(uint32(k+1), tenant, n))
			}
			for _, bt := range txn(tenant, last, evs) {
				r.publish(t, bt)
			}
		}
	}
	waitFailed(t, &store.failed, 6, "the archiver did not keep retrying during the outage")
	for _, tenant := range []string{"a", "b"} {
		if _, err := catalog.ReadManifest(t.Context(), base, schemas.TenantID(tenant)); !errors.Is(err, catalog.ErrUnknownTenant) {
			t.Fatalf("tenant %s has a manifest during the outage: %v", tenant, err)
		}
	}
	for p := range b.Partitions() {
		cons, err := b.JetStream().Consumer(t.Context(), b.Config().Stream, "tenantwal-archiver-p000"+string(rune('0'+p)))
		if err != nil {
			continue // a partition without messages may not have started
		}
		info, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream != 0 {
			t.Errorf("partition %d acknowledged up to %d during the outage", p, info.AckFloor.Stream)
		}
	}

	store.down.Store(false)
	for _, tenant := range []string{"a", "b"} {
		waitComplete(t, base, tenant, last)
	}
	r.stop(t)
	for _, tenant := range []string{"a", "b"} {
		assertUnique(t, archivedChanges(t, base, tenant), n/2)
	}
}

// waitFailed waits up to 10 s for failed to reach n, else fails with what.
func waitFailed(t *testing.T, failed *atomic.Int64, n int64, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for failed.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s (%d failed writes)", what, failed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
