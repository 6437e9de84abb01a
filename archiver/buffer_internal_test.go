package archiver

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/natstest"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestValueArenaOwnsCopies: after own, values hold the same bytes but none
// refers to the buffer they were decoded from (which it would pin), also
// an empty value; null values stay nil; a big row gets its own allocation.
func TestValueArenaOwnsCopies(t *testing.T) {
	var a valueArena
	for _, size := range []int{10, arenaChunk / 4, arenaChunk/4 + 1, arenaChunk} {
		payload := []byte(strings.Repeat("x", size) + "tail")
		vals := []schemas.Value{
			{Kind: schemas.ValueText, Data: payload[:size]},
			{Kind: schemas.ValueNull},
			{Kind: schemas.ValueText, Data: payload[size:size]},
			{Kind: schemas.ValueText, Data: payload[size:]},
		}
		a.own(vals)
		for i, v := range vals {
			if v.Data != nil && refersTo(v.Data, payload) {
				t.Errorf("%d bytes: value %d still refers to the payload", size, i)
			}
		}
		if string(vals[0].Data) != string(payload[:size]) {
			t.Errorf("%d bytes: value 0 is %d bytes, want the payload's first %d", size, len(vals[0].Data), size)
		}
		if vals[1].Data != nil {
			t.Errorf("%d bytes: a null value got data", size)
		}
		if vals[2].Data == nil || len(vals[2].Data) != 0 {
			t.Errorf("%d bytes: the empty value is %v, want empty and not nil", size, vals[2].Data)
		}
		if string(vals[3].Data) != "tail" {
			t.Errorf("%d bytes: value 3 is %q, want %q", size, vals[3].Data, "tail")
		}
		// A row's values must not run into each other.
		vals[0].Data = append(vals[0].Data, 'y')
		if string(vals[3].Data) != "tail" {
			t.Errorf("%d bytes: appending to value 0 changed value 3 to %q", size, vals[3].Data)
		}
	}
}

// refersTo reports whether b points into buf's memory (even when empty).
func refersTo(b, buf []byte) bool {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= lo && p < lo+uintptr(cap(buf))
}

// heapTable is a table like the bench's many-tenants table: 17 columns, a
// schema of ~2 KB as JSON in every message.
var heapTable = func() *schemas.TableSchema {
	ts := &schemas.TableSchema{RelID: 16400, Schema: "public", Name: "big", ReplicaIdentity: 'd',
		PrimaryKey: []string{"tenant_id", "id"}, TenantColumn: "tenant_id"}
	ts.Columns = append(ts.Columns,
		schemas.Column{Name: "tenant_id", TypeOID: 25, TypeMod: -1, TypeName: "text", Key: true, NotNull: true, Num: 1},
		schemas.Column{Name: "id", TypeOID: 20, TypeMod: -1, TypeName: "bigint", Key: true, NotNull: true, Num: 2})
	for i := range 15 {
		ts.Columns = append(ts.Columns, schemas.Column{Name: fmt.Sprintf("column_%02d", i), TypeOID: 25, TypeMod: -1,
			TypeName: "text", NotNull: true, Default: "''::text", Num: int16(i + 3)})
	}
	ts.ComputeVersion()
	return ts
}()

// TestBufferBytesFollowHeap: a worker buffers one row each of many
// tenants, one message per row through real JetStream as capture
// publishes them; what its budget counts stays close to what the Go heap
// holds for it. Before the buffer copied rows out of their messages and
// counted its own overhead, the heap held ~4 times what was counted
// (every message's payload, with its table schema as JSON, and a decoded
// schema per tenant).
func TestBufferBytesFollowHeap(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// A nats-server process of its own: an embedded one's stream cache
	// would be in the heap measured.
	proc := natstest.StartProcess(t)
	b, err := bus.Open(ctx, bus.Config{URL: proc.URL(), Partitions: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{SpillDir: t.TempDir()}, b, store)
	if err != nil {
		t.Fatal(err)
	}
	const tenants = 10_000
	lsn := schemas.LSN(0x1000)
	for i := range tenants {
		vals := []schemas.Value{{Kind: schemas.ValueText, Data: fmt.Appendf(nil, "t%05d", i)},
			{Kind: schemas.ValueText, Data: fmt.Appendf(nil, "%d", 1_000_000+i)}}
		for c := range 15 {
			vals = append(vals, schemas.Value{Kind: schemas.ValueText, Data: fmt.Appendf(nil, "value %d of column %d", i, c)})
		}
		batch := &schemas.Batch{Kind: schemas.KindChanges, Tenant: schemas.TenantID(fmt.Sprintf("t%05d", i)), CommitLSN: lsn + schemas.LSN(i),
			EndLSN: lsn + schemas.LSN(i) + 1, CommitTime: time.Unix(1e9, 0), XID: uint32(i), Final: true,
			Tables: []*schemas.TableSchema{heapTable}, Events: []schemas.Event{{Seq: 1, Op: schemas.OpInsert, New: vals}}}
		data, err := batch.AppendEncode(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.JetStream().PublishAsync(b.Subject(0), data); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-b.JetStream().PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishing timed out")
	}
	cons, err := b.Consumer(ctx, 0, "heap-test")
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(a, 0, cons)
	for i := range tenants {
		w.tenants[schemas.TenantID(fmt.Sprintf("t%05d", i))] = &tenantState{nextSeq: 1}
	}
	before := liveHeap()
	for got := 0; got < tenants; {
		batch, err := cons.Fetch(512, jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			if err := w.handle(ctx, msg); err != nil {
				t.Fatal(err)
			}
			got++
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("fetch after %d messages: %v", got, err)
		}
	}
	held := liveHeap() - before
	counted := w.bytes
	runtime.KeepAlive(w)
	ratio := float64(counted) / float64(held)
	t.Logf("%d tenants of one row: the budget counts %d bytes (%d a tenant), the heap holds %d more (%d a tenant): %.2f",
		tenants, counted, counted/tenants, held, held/tenants, ratio)
	if ratio < 0.8 || ratio > 1.5 {
		t.Errorf("the budget counts %.2f× what the heap holds for the buffer, want 0.8-1.5×", ratio)
	}
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestPartTableStretches: rows of a table whose version changes and back
// within one part go to a new tableRows (object) for each stretch, so one
// table's objects never interleave; rows of other tables between them do
// not split a stretch. Both with few tables (scan) and many (map).
func TestPartTableStretches(t *testing.T) {
	mk := func(name string, gen uint32, cols ...string) *schemas.TableSchema {
		ts := &schemas.TableSchema{Schema: "public", Name: name, Generation: gen, ReplicaIdentity: 'f'}
		for _, c := range cols {
			ts.Columns = append(ts.Columns, schemas.Column{Name: c, TypeOID: 25, TypeMod: -1, TypeName: "text", Key: true})
		}
		ts.ComputeVersion()
		return ts
	}
	v1, v2 := mk("docs", 7, "a"), mk("docs", 7, "a", "b")
	renamed := mk("papers", 7, "a") // the same table (generation), renamed
	for _, others := range []int{1, 2 * indexFrom} {
		p := &part{kind: schemas.EntrySegment}
		seq := uint32(0)
		add := func(ts *schemas.TableSchema) {
			seq++
			p.add(ts, row{meta: segmentMeta(seq), vals: make([]schemas.Value, len(ts.Columns))})
		}
		for i := range others {
			add(mk(fmt.Sprint("other", i), uint32(100+i), "a"))
		}
		add(v1)
		add(v1)
		add(mk("other0", 100, "a"))
		add(v2)
		add(v1)
		add(renamed)
		add(v1)
		var got []string
		for _, tr := range p.tables[others:] {
			got = append(got, fmt.Sprintf("%s/%d:%d", tr.ts.Name, len(tr.ts.Columns), len(tr.rows)))
		}
		want := "docs/1:2 docs/2:1 docs/1:1 papers/1:1 docs/1:1"
		if strings.Join(got, " ") != want {
			t.Errorf("%d other tables: stretches %q, want %q", others, strings.Join(got, " "), want)
		}
	}
}

func segmentMeta(seq uint32) segment.Meta {
	return segment.Meta{LSN: 0x100, Seq: seq, Op: schemas.OpInsert, CommitTime: time.Unix(0x100, 0)}
}
