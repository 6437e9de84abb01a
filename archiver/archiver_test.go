package archiver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// running is an embedded JetStream server with an archiver consuming it.
type running struct {
	bus    *bus.Bus
	cancel context.CancelFunc
	g      *errgroup.Group
}

func startArchiver(t *testing.T, storeDir string, store objstore.Store, opts ...func(*archiver.Config)) *running {
	t.Helper()
	b, err := bus.Open(t.Context(), bus.Config{StoreDir: storeDir, Partitions: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := archiver.Config{FlushInterval: 20 * time.Millisecond, SpillDir: t.TempDir()}
	for _, o := range opts {
		o(&cfg)
	}
	return runArchiver(t, b, store, cfg)
}

// runArchiver runs an archiver with cfg on b until the test ends.
func runArchiver(t *testing.T, b *bus.Bus, store objstore.Store, cfg archiver.Config, opts ...archiver.Option) *running {
	t.Helper()
	a, err := archiver.New(cfg, b, store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Run(gctx) })
	r := &running{bus: b, cancel: cancel, g: g}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := r.g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("archiver: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.bus.Close(ctx); err != nil {
		t.Errorf("close bus: %v", err)
	}
}

// publish publishes b as capture does, with its de-duplication id.
func (r *running) publish(t *testing.T, b *schemas.Batch) {
	t.Helper()
	part := 0
	if b.Kind != schemas.KindMarker {
		part = schemas.Partition(b.Tenant, r.bus.Partitions())
	}
	data, err := b.AppendEncode(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: r.bus.Subject(part), Data: data}
	if _, err := r.bus.JetStream().PublishMsg(t.Context(), msg, jetstream.WithMsgID(b.MsgID(part))); err != nil {
		t.Fatal(err)
	}
}

var docs = func() *schemas.TableSchema {
	ts := &schemas.TableSchema{RelID: 16384, Schema: "public", Name: "docs", ReplicaIdentity: 'd', PrimaryKey: []string{"tenant_id", "id"},
		TenantColumn: "tenant_id", Columns: []schemas.Column{
			{Name: "tenant_id", TypeOID: 25, TypeMod: -1, TypeName: "text", NotNull: true, Key: true},
			{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", NotNull: true, Key: true},
			{Name: "v", TypeOID: 25, TypeMod: -1, TypeName: "text"},
		}}
	ts.ComputeVersion()
	return ts
}()

func text(s string) schemas.Value { return schemas.Value{Kind: schemas.ValueText, Data: []byte(s)} }

func insert(seq uint32, tenant string, id int) schemas.Event {
	return schemas.Event{Seq: seq, Op: schemas.OpInsert, New: []schemas.Value{text(tenant), text(fmt.Sprint(id)), text("v")}}
}

// txn returns the chunks of one transaction of tenant at lsn: one chunk
// per element of events, the last one final.
func txn(tenant string, lsn schemas.LSN, events ...[]schemas.Event) []*schemas.Batch {
	var out []*schemas.Batch
	for i, evs := range events {
		out = append(out, &schemas.Batch{Kind: schemas.KindChanges, Tenant: schemas.TenantID(tenant), CommitLSN: lsn, EndLSN: lsn + 8,
			CommitTime: time.Unix(int64(lsn), 0).UTC(), XID: uint32(lsn), Chunk: uint32(i), Final: i == len(events)-1,
			Tables: []*schemas.TableSchema{docs}, Events: evs})
	}
	return out
}

// waitComplete waits until tenant's manifest says it is complete up to lsn.
func waitComplete(t *testing.T, store objstore.Store, tenant string, lsn schemas.LSN) {
	t.Helper()
	waitCompleteWithin(t, store, tenant, lsn, 10*time.Second)
}

func waitCompleteWithin(t *testing.T, store objstore.Store, tenant string, lsn schemas.LSN, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		entries, err := catalog.ReadManifest(t.Context(), store, schemas.TenantID(tenant))
		if err == nil && len(entries) > 0 && entries[len(entries)-1].CompleteLSN >= lsn {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant %q not complete up to %s: %v", tenant, lsn, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// archivedChanges returns every archived change row of tenant as
// "lsn#seq op id", in manifest order.
func archivedChanges(t *testing.T, store objstore.Store, tenant string) []string {
	t.Helper()
	entries, err := catalog.ReadManifest(t.Context(), store, schemas.TenantID(tenant))
	if errors.Is(err, catalog.ErrUnknownTenant) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		for _, o := range e.Objects {
			rc, err := store.Get(t.Context(), o.Key)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.CreateTemp(t.TempDir(), "seg-*.parquet")
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(f, rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			r, err := segment.NewReader(f, n)
			if err != nil {
				t.Fatal(err)
			}
			for {
				m, vals, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("%s#%d %c %s", m.LSN, m.Seq, m.Op, vals[1].Data))
			}
			r.Close()
			f.Close()
		}
	}
	return out
}

func assertUnique(t *testing.T, changes []string, want int) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range changes {
		if seen[c] {
			t.Errorf("change %s archived twice", c)
		}
		seen[c] = true
	}
	if len(seen) != want {
		t.Errorf("want %d distinct changes archived, got %d: %v", want, len(seen), changes)
	}
}

// TestReplayAfterLostStreamSkipsArchivedChanges replays transactions, as
// capture does from the slot after JetStream lost its messages (a fresh
// store, no de-duplication window), to a restarted archiver: changes
// already in the manifest are not archived again, also when the tenant's
// newest entry holds no rows (the final chunk of a transaction whose rows
// were flushed earlier).
func TestReplayAfterLostStreamSkipsArchivedChanges(t *testing.T) {
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	big := txn("a", 1000, []schemas.Event{insert(1, "a", 1), insert(2, "a", 2)}, nil)
	other := txn("b", 1000, []schemas.Event{insert(3, "b", 1)})
	later := txn("a", 2000, []schemas.Event{insert(1, "a", 3)})

	r := startArchiver(t, t.TempDir(), store)
	r.publish(t, big[0])
	r.publish(t, other[0])
	// The rows are flushed before the final chunk arrives.
	deadline := time.Now().Add(10 * time.Second)
	for len(archivedChanges(t, store, "a")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("first chunk not archived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.publish(t, big[1])
	waitComplete(t, store, "a", 1000)
	r.stop(t)

	for round := range 3 {
		r = startArchiver(t, t.TempDir(), store)
		for _, b := range append(append(append([]*schemas.Batch{}, big...), other...), later...) {
			r.publish(t, b)
		}
		waitComplete(t, store, "a", 2000)
		waitComplete(t, store, "b", 1000)
		r.stop(t)
		assertUnique(t, archivedChanges(t, store, "a"), 3)
		assertUnique(t, archivedChanges(t, store, "b"), 1)
		if t.Failed() {
			t.Fatalf("after replay %d", round+1)
		}
	}
}

// TestRedeliveryAfterRestartSkipsArchivedChanges restarts the archiver on
// the same JetStream store while messages keep coming, and publishes every
// transaction again within the de-duplication window and after it (new
// message ids): each change is archived once.
func TestRedeliveryAfterRestartSkipsArchivedChanges(t *testing.T) {
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var all []*schemas.Batch
	n := 0
	for i := range 60 {
		lsn := schemas.LSN(1000 + 100*i)
		for _, tenant := range []string{"a", "b", "c"} {
			var evs []schemas.Event
			for k := range 3 {
				n++
				evs = append(evs, insert(uint32(k+1), tenant, n))
			}
			all = append(all, txn(tenant, lsn, evs[:2], evs[2:])...)
		}
	}
	last := schemas.LSN(1000 + 100*59)
	r := startArchiver(t, dir, store)
	for i, b := range all {
		r.publish(t, b)
		if i%50 == 49 {
			r.stop(t)
			r = startArchiver(t, dir, store)
		}
	}
	for _, tenant := range []string{"a", "b", "c"} {
		waitComplete(t, store, tenant, last)
	}
	// A replay whose message ids the stream no longer knows.
	for _, b := range all {
		b.Chunk += 100
		r.publish(t, b)
	}
	marker := &schemas.Batch{Kind: schemas.KindMarker, CommitLSN: last + 1, EndLSN: last + 9, CommitTime: time.Now().UTC(), Final: true}
	for p := range r.bus.Partitions() {
		data, err := marker.AppendEncode(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.bus.JetStream().Publish(t.Context(), r.bus.Subject(p), data); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		wms, err := catalog.ReadWatermarks(t.Context(), store)
		if err == nil && len(wms) == r.bus.Partitions() && wms[0].CommitLSN == last+1 && wms[3].CommitLSN == last+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watermarks not written: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.stop(t)
	for _, tenant := range []string{"a", "b", "c"} {
		assertUnique(t, archivedChanges(t, store, tenant), 180)
	}
}

// TestSplitSnapshotCompleteEntryListsAllObjects archives a tenant's
// snapshot in several flushes, with an archiver restart in between: the
// complete snapshot entry (the one a restore picks) lists every object.
func TestSplitSnapshotCompleteEntryListsAllObjects(t *testing.T) {
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const lsn = schemas.LSN(5000)
	snap := func(chunk uint32, evs ...schemas.Event) *schemas.Batch {
		return &schemas.Batch{Kind: schemas.KindSnapshot, Tenant: "a", CommitLSN: lsn, CommitTime: time.Unix(5000, 0).UTC(), Chunk: chunk,
			Tables: []*schemas.TableSchema{docs}, Events: evs}
	}
	rows := func() int64 {
		entries, err := catalog.ReadManifest(t.Context(), store, "a")
		if err != nil {
			return -1
		}
		var n int64
		for _, e := range entries {
			if e.Kind == schemas.EntrySnapshot {
				n = 0
				for _, o := range e.Objects {
					n += o.Rows
				}
			}
		}
		return n
	}
	waitRows := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for rows() != want {
			if time.Now().After(deadline) {
				t.Fatalf("newest snapshot entry lists %d rows, want %d", rows(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	dir := t.TempDir()
	r := startArchiver(t, dir, store)
	r.publish(t, snap(0, insert(1, "a", 1), insert(2, "a", 2)))
	waitRows(2)
	r.publish(t, snap(1, insert(3, "a", 3)))
	waitRows(1)
	r.stop(t)
	r = startArchiver(t, dir, store)
	r.publish(t, snap(2, insert(4, "a", 4), insert(5, "a", 5)))
	waitRows(2)
	done := &schemas.Batch{Kind: schemas.KindSnapshotDone, Tenant: "a", CommitLSN: lsn, EndLSN: lsn + 1, CommitTime: time.Unix(5000, 0).UTC(),
		Final: true, Tables: []*schemas.TableSchema{docs}}
	r.publish(t, done)
	waitRows(5)
	r.stop(t)
	entries, err := catalog.ReadManifest(t.Context(), store, "a")
	if err != nil {
		t.Fatal(err)
	}
	final := entries[len(entries)-1]
	if final.CompleteLSN != lsn || final.First != (schemas.Pos{LSN: lsn, Seq: 1}) || len(final.Objects) != 3 {
		t.Errorf("complete snapshot entry: complete %s, first %s, %d objects", final.CompleteLSN, final.First, len(final.Objects))
	}
	// Every row once in the complete entry's objects (the partial entries
	// before it list the first three again).
	all := archivedChanges(t, store, "a")
	assertUnique(t, all[len(all)-5:], 5)
}
