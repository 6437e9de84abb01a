package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func newStore(t testing.TB) *objstore.FileStore {
	t.Helper()
	s, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func table() *schemas.TableSchema {
	ts := &schemas.TableSchema{Schema: "public", Name: "items", ReplicaIdentity: 'd',
		Columns:    []schemas.Column{{Name: "id", TypeOID: 23, TypeName: "integer", Key: true, NotNull: true}},
		PrimaryKey: []string{"id"}}
	ts.ComputeVersion()
	return ts
}

// entry returns a valid entry of tenant id whose changes span LSNs
// [first, last] (commit time t0 + LSN seconds), complete up to last.
func entry(id schemas.TenantID, kind string, first, last schemas.LSN) *schemas.ManifestEntry {
	ts := table()
	e := &schemas.ManifestEntry{Tenant: id, Kind: kind, Created: t0, Writer: "w1",
		First: schemas.Pos{LSN: first, Seq: 1}, Last: schemas.Pos{LSN: last, Seq: 1},
		MinTime: at(first), MaxTime: at(last), CompleteLSN: last, CompleteTime: at(last),
		Tables: map[string]*schemas.TableSchema{ts.Version: ts}}
	e.Objects = []schemas.ObjectRef{{Key: schemas.ObjectDir(id, "segments", first) + "public.items.parquet",
		Table: "public.items", SchemaVersion: ts.Version, Rows: 1, First: e.First, Last: e.Last}}
	if kind == schemas.EntrySnapshot {
		e.First = schemas.Pos{LSN: last, Seq: 0}
		e.Last = e.First
	}
	return e
}

func at(l schemas.LSN) time.Time { return t0.Add(time.Duration(l) * time.Second) }

func mustAppend(t testing.TB, store objstore.Store, e *schemas.ManifestEntry, seq uint64) {
	t.Helper()
	if err := catalog.Append(testCtx(t), store, e, seq); err != nil {
		t.Fatalf("append entry %d: %v", seq, err)
	}
}

func TestAppendConditionalCreate(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t)
	first := entry("acme", schemas.EntrySnapshot, 0, 0x100)
	mustAppend(t, store, first, 1)

	second := entry("acme", schemas.EntrySegment, 0x200, 0x300)
	second.Writer = "stale-archiver"
	err := catalog.Append(ctx, store, second, 1)
	if !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("second Append at seq 1: got %v, want ErrExists", err)
	}
	got, err := catalog.ReadEntry(ctx, store, "acme", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Writer != "w1" || got.Kind != schemas.EntrySnapshot || got.Last.LSN != 0x100 {
		t.Fatalf("entry 1 was replaced: %+v", got)
	}
	if n, err := catalog.LastSeq(ctx, store, "acme"); err != nil || n != 1 {
		t.Fatalf("LastSeq = %d, %v; want 1", n, err)
	}
	mustAppend(t, store, second, 2)
	if n, err := catalog.LastSeq(ctx, store, "acme"); err != nil || n != 2 {
		t.Fatalf("LastSeq = %d, %v; want 2", n, err)
	}
}

func TestAppendRefusesInvalidEntry(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t)
	e := entry("acme", schemas.EntrySegment, 0x200, 0x300)
	e.Objects[0].Key = schemas.TenantPrefix("other") + "segments/x/public.items.parquet"
	err := catalog.Append(ctx, store, e, 1)
	if err == nil || !strings.Contains(err.Error(), "outside tenant") {
		t.Fatalf("Append of an entry naming another tenant's object: %v", err)
	}
	if n, err := catalog.LastSeq(ctx, store, "acme"); err != nil || n != 0 {
		t.Fatalf("a refused entry was written: LastSeq = %d, %v", n, err)
	}
}

func TestReadManifestOrder(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t)
	mustAppend(t, store, entry("acme", schemas.EntrySnapshot, 0, 0x100), 1)
	// 12 entries: 2 sorts after 10 as text unless the numbers are padded.
	for seq := uint64(2); seq <= 12; seq++ {
		l := schemas.LSN(seq * 0x100)
		mustAppend(t, store, entry("acme", schemas.EntrySegment, l, l+0x10), seq)
	}
	entries, err := catalog.ReadManifest(ctx, store, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 12 {
		t.Fatalf("got %d entries, want 12", len(entries))
	}
	for i, e := range entries {
		if e.Seq != uint64(i+1) || e.Tenant != "acme" || e.Version != schemas.ManifestVersion {
			t.Fatalf("entry %d: seq %d tenant %q version %d", i, e.Seq, e.Tenant, e.Version)
		}
	}
}

// rawEntry returns the stored bytes of entry seq of tenant id.
func rawEntry(t testing.TB, store objstore.Store, id schemas.TenantID, seq uint64) []byte {
	t.Helper()
	rc, err := store.Get(testCtx(t), schemas.ManifestKey(id, seq))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadManifestRefusesDamagedLog(t *testing.T) {
	setup := func(t *testing.T) *objstore.FileStore {
		store := newStore(t)
		mustAppend(t, store, entry("acme", schemas.EntrySnapshot, 0, 0x100), 1)
		mustAppend(t, store, entry("acme", schemas.EntrySegment, 0x200, 0x300), 2)
		mustAppend(t, store, entry("other", schemas.EntrySnapshot, 0, 0x100), 1)
		return store
	}
	put := func(t *testing.T, store objstore.Store, key string, b []byte) {
		if err := store.Put(testCtx(t), key, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, store *objstore.FileStore)
		want   []string
	}{
		{"entry copied to the next number", func(t *testing.T, store *objstore.FileStore) {
			put(t, store, schemas.ManifestKey("acme", 3), rawEntry(t, store, "acme", 2))
		}, []string{schemas.ManifestKey("acme", 3), "moved or altered"}},
		{"entry moved from another tenant", func(t *testing.T, store *objstore.FileStore) {
			b := rawEntry(t, store, "other", 1)
			put(t, store, schemas.ManifestKey("acme", 3), b)
		}, []string{schemas.ManifestKey("acme", 3)}},
		{"entry altered to another sequence number", func(t *testing.T, store *objstore.FileStore) {
			var m map[string]any
			if err := json.Unmarshal(rawEntry(t, store, "acme", 2), &m); err != nil {
				t.Fatal(err)
			}
			m["seq"] = 7
			b, _ := json.Marshal(m)
			put(t, store, schemas.ManifestKey("acme", 2), b)
		}, []string{schemas.ManifestKey("acme", 2), "moved or altered"}},
		{"entry that does not decode", func(t *testing.T, store *objstore.FileStore) {
			put(t, store, schemas.ManifestKey("acme", 2), []byte(`{"version": 1, "seq": 2,`))
		}, []string{schemas.ManifestKey("acme", 2)}},
		{"entry naming another tenant's object", func(t *testing.T, store *objstore.FileStore) {
			var m map[string]any
			if err := json.Unmarshal(rawEntry(t, store, "acme", 2), &m); err != nil {
				t.Fatal(err)
			}
			m["objects"].([]any)[0].(map[string]any)["key"] = schemas.TenantPrefix("other") + "segments/x/public.items.parquet"
			b, _ := json.Marshal(m)
			put(t, store, schemas.ManifestKey("acme", 2), b)
		}, []string{schemas.ManifestKey("acme", 2), "outside tenant"}},
		{"missing entry", func(t *testing.T, store *objstore.FileStore) {
			mustAppend(t, store, entry("acme", schemas.EntrySegment, 0x400, 0x500), 3)
			if err := store.Delete(testCtx(t), schemas.ManifestKey("acme", 2)); err != nil {
				t.Fatal(err)
			}
		}, []string{"entry 2", "missing"}},
		{"stray object in the manifest folder", func(t *testing.T, store *objstore.FileStore) {
			put(t, store, schemas.ManifestPrefix("acme")+"notes.txt", []byte("x"))
		}, []string{"notes.txt"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := setup(t)
			tc.damage(t, store)
			_, err := catalog.ReadManifest(testCtx(t), store, "acme")
			if err == nil {
				t.Fatal("ReadManifest accepted a damaged log")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, err := catalog.LoadTenant(testCtx(t), store, "acme"); err == nil {
				t.Error("LoadTenant accepted a damaged log")
			}
			// The other tenant's log is not affected.
			if _, err := catalog.ReadManifest(testCtx(t), store, "other"); err != nil {
				t.Errorf("tenant other: %v", err)
			}
		})
	}
}

func TestListTenantsHostileIDs(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t)
	ids := []schemas.TenantID{"a/b", "a", "*>", "ünï", "x y", "A", "a.b", "..", "%41", "tw.p0001"}
	for i, id := range ids {
		mustAppend(t, store, entry(id, schemas.EntrySnapshot, 0, schemas.LSN(0x100*(i+1))), 1)
		mustAppend(t, store, entry(id, schemas.EntrySegment, 0x10000, 0x10010), 2)
	}
	if err := catalog.WriteBaseline(ctx, store, &schemas.Baseline{LSN: 0x100, Time: t0, Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	if err := catalog.WriteWatermark(ctx, store, &schemas.Watermark{Partition: 1, Partitions: 4, CommitLSN: 0x100}); err != nil {
		t.Fatal(err)
	}

	got, err := catalog.ListTenants(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ids)
	// Key order: by prefix, so "a%2Fb/" ('%' < '/') before "a/".
	slices.SortFunc(want, func(a, b schemas.TenantID) int {
		return strings.Compare(schemas.TenantPrefix(a), schemas.TenantPrefix(b))
	})
	if !slices.Equal(got, want) {
		t.Fatalf("ListTenants = %q\nwant %q", got, want)
	}
	for i, id := range ids {
		entries, err := catalog.ReadManifest(ctx, store, id)
		if err != nil {
			t.Fatalf("tenant %q: %v", id, err)
		}
		if len(entries) != 2 || entries[0].Tenant != id || entries[0].Last.LSN != schemas.LSN(0x100*(i+1)) {
			t.Fatalf("tenant %q: got %d entries, first %+v: another tenant's log leaked in", id, len(entries), entries[0])
		}
	}
}

func TestListTenantsEmpty(t *testing.T) {
	got, err := catalog.ListTenants(testCtx(t), newStore(t))
	if err != nil || len(got) != 0 {
		t.Fatalf("ListTenants on an empty store = %q, %v", got, err)
	}
}

func TestComputeRange(t *testing.T) {
	snap := entry("acme", schemas.EntrySnapshot, 0, 0x100)
	seg1 := entry("acme", schemas.EntrySegment, 0x200, 0x300)
	seg2 := entry("acme", schemas.EntrySegment, 0x400, 0x500)
	seg2.CompleteLSN, seg2.CompleteTime = 0x480, at(0x480) // the last transaction is not complete yet
	snap2 := entry("acme", schemas.EntrySnapshot, 0, 0x600)
	partial := entry("acme", schemas.EntrySnapshot, 0, 0x80) // a snapshot archived in parts: not complete yet
	partial.CompleteLSN, partial.CompleteTime = 0, time.Time{}
	base := &schemas.Baseline{LSN: 0x50, Time: at(0x50), Partitions: 4}
	r := func(from, to schemas.LSN) catalog.Range {
		return catalog.Range{FromLSN: from, FromTime: at(from), ToLSN: to, ToTime: at(to)}
	}
	cases := []struct {
		name    string
		entries []*schemas.ManifestEntry
		base    *schemas.Baseline
		wm      *schemas.Watermark
		want    catalog.Range
		wantErr string
	}{
		{"baseline starts the range", []*schemas.ManifestEntry{seg1, seg2}, base, nil, r(0x50, 0x480), ""},
		{"baseline wins over the tenant's snapshot", []*schemas.ManifestEntry{snap, seg1}, base, nil, r(0x50, 0x300), ""},
		{"first snapshot without a baseline", []*schemas.ManifestEntry{snap, seg1, seg2, snap2}, nil, nil, r(0x100, 0x600), ""},
		{"snapshot only", []*schemas.ManifestEntry{snap}, nil, nil, r(0x100, 0x100), ""},
		{"later watermark extends the end", []*schemas.ManifestEntry{snap, seg1},
			nil, &schemas.Watermark{Partitions: 4, CommitLSN: 0x900, CommitTime: at(0x900)}, r(0x100, 0x900), ""},
		{"earlier watermark is ignored", []*schemas.ManifestEntry{snap, seg1, seg2},
			nil, &schemas.Watermark{Partitions: 4, CommitLSN: 0x200, CommitTime: at(0x200)}, r(0x100, 0x480), ""},
		{"watermark of another partition count is ignored", []*schemas.ManifestEntry{seg1},
			base, &schemas.Watermark{Partitions: 8, CommitLSN: 0x900, CommitTime: at(0x900)}, r(0x50, 0x300), ""},
		{"no snapshot and no baseline", []*schemas.ManifestEntry{seg1}, nil, nil, catalog.Range{}, "initial snapshot"},
		{"a partial snapshot does not start the range", []*schemas.ManifestEntry{partial, snap, seg1}, nil, nil, r(0x100, 0x300), ""},
		{"only a partial snapshot", []*schemas.ManifestEntry{partial}, nil, nil, catalog.Range{}, "initial snapshot"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := catalog.ComputeRange(tc.entries, tc.base, tc.wm)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want an error about %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.FromLSN != tc.want.FromLSN || !got.FromTime.Equal(tc.want.FromTime) ||
				got.ToLSN != tc.want.ToLSN || !got.ToTime.Equal(tc.want.ToTime) {
				t.Fatalf("range %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLoadTenantRange(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t)
	const id schemas.TenantID = "x y"
	mustAppend(t, store, entry(id, schemas.EntrySegment, 0x200, 0x300), 1)
	base := &schemas.Baseline{LSN: 0x100, Time: at(0x100), Partitions: 4}
	if err := catalog.WriteBaseline(ctx, store, base); err != nil {
		t.Fatal(err)
	}
	p := schemas.Partition(id, 4)
	for q := range 4 {
		l := schemas.LSN(0x200)
		if q == p {
			l = 0x700
		}
		if err := catalog.WriteWatermark(ctx, store, &schemas.Watermark{Partition: q, Partitions: 4, CommitLSN: l, CommitTime: at(l)}); err != nil {
			t.Fatal(err)
		}
	}
	tn, err := catalog.LoadTenant(ctx, store, id)
	if err != nil {
		t.Fatal(err)
	}
	if tn.ID != id || len(tn.Entries) != 1 {
		t.Fatalf("tenant %q with %d entries", tn.ID, len(tn.Entries))
	}
	if tn.Range.FromLSN != 0x100 || !tn.Range.FromTime.Equal(at(0x100)) || tn.Range.ToLSN != 0x700 || !tn.Range.ToTime.Equal(at(0x700)) {
		t.Fatalf("range %s: want from the baseline to the tenant's partition watermark", tn.Range)
	}
	s := tn.Range.String()
	for _, w := range []string{"0/100", "0/700", at(0x100).Format(time.RFC3339)} {
		if !strings.Contains(s, w) {
			t.Errorf("Range.String() = %q, missing %q", s, w)
		}
	}
}

func TestUnknownTenant(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t)
	mustAppend(t, store, entry("acme", schemas.EntrySnapshot, 0, 0x100), 1)
	for _, id := range []schemas.TenantID{"nobody", "acm", "acme/"} {
		_, err := catalog.ReadManifest(ctx, store, id)
		if !errors.Is(err, catalog.ErrUnknownTenant) {
			t.Fatalf("ReadManifest(%q) = %v, want ErrUnknownTenant", id, err)
		}
		if !strings.Contains(err.Error(), "tenantwal ls") || !strings.Contains(err.Error(), string(id)) {
			t.Errorf("error %q should name the tenant and `tenantwal ls`", err)
		}
		if _, err := catalog.LoadTenant(ctx, store, id); !errors.Is(err, catalog.ErrUnknownTenant) {
			t.Errorf("LoadTenant(%q) = %v, want ErrUnknownTenant", id, err)
		}
	}
}

func TestBaselineAndWatermarks(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t)
	if _, err := catalog.ReadBaseline(ctx, store); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("ReadBaseline on an empty store: %v, want ErrNotFound", err)
	}
	if err := catalog.WriteBaseline(ctx, store, &schemas.Baseline{LSN: 0x10, Time: t0, Partitions: 2, Slot: "s"}); err != nil {
		t.Fatal(err)
	}
	b, err := catalog.ReadBaseline(ctx, store)
	if err != nil || b.LSN != 0x10 || b.Version != 1 || b.Slot != "s" || !b.Time.Equal(t0) {
		t.Fatalf("ReadBaseline = %+v, %v", b, err)
	}
	for p := range 2 {
		if err := catalog.WriteWatermark(ctx, store, &schemas.Watermark{Partition: p, Partitions: 2, CommitLSN: schemas.LSN(p + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := catalog.WriteWatermark(ctx, store, &schemas.Watermark{Partition: 1, Partitions: 2, CommitLSN: 9}); err != nil {
		t.Fatal(err)
	}
	// Another key under the prefix (an S3 server's upload in progress,
	// gone by the time it would be read) is not a watermark.
	if err := store.Put(ctx, schemas.WatermarkPrefix+"p0001.json.sgwtmp.42", strings.NewReader("{")); err != nil {
		t.Fatal(err)
	}
	wms, err := catalog.ReadWatermarks(ctx, store)
	if err != nil || len(wms) != 2 || wms[0].CommitLSN != 1 || wms[1].CommitLSN != 9 {
		t.Fatalf("ReadWatermarks = %v, %v", wms, err)
	}
}
