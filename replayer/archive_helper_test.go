package replayer

// Test helpers shared by the internal tests and the black-box tests of
// package replayer_test (the export_test.go pattern): ArchiveBuilder writes
// a tenant's archive by hand, with the segment Writer and catalog.Append,
// the way the archiver lays it out.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// Epoch is the commit time of LSN 0 in the tests' archives.
var Epoch = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// CommitAt is the default commit time of the transaction at LSN l: Epoch
// plus l seconds, so time and LSN order agree.
func CommitAt(l schemas.LSN) time.Time { return Epoch.Add(time.Duration(l) * time.Second) }

// Txt, Null and Unchanged build values.
func Txt(s string) schemas.Value { return schemas.Value{Kind: schemas.ValueText, Data: []byte(s)} }

var (
	Null      = schemas.Value{Kind: schemas.ValueNull}
	Unchanged = schemas.Value{Kind: schemas.ValueUnchanged}
)

// Change is one stored row of a test object.
type Change struct {
	LSN  schemas.LSN
	Seq  uint32
	Op   schemas.Op
	Time time.Time // zero: CommitAt(LSN)
	Vals []schemas.Value
}

// ArchiveBuilder writes one tenant's archive into a file store.
type ArchiveBuilder struct {
	T      testing.TB
	Store  *objstore.FileStore
	Tenant schemas.TenantID
	seq    uint64
	times  map[string][2]time.Time // object key -> min, max commit time
}

// NewArchiveBuilder starts an empty archive for tenant in a temp dir.
func NewArchiveBuilder(t testing.TB, tenant schemas.TenantID) *ArchiveBuilder {
	t.Helper()
	st, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &ArchiveBuilder{T: t, Store: st, Tenant: tenant, times: map[string][2]time.Time{}}
}

// Object writes rows of ts as one Parquet object of kind "segments" or
// "snapshots" and returns its reference.
func (a *ArchiveBuilder) Object(ts *schemas.TableSchema, kind string, rows []Change) schemas.ObjectRef {
	a.T.Helper()
	var buf bytes.Buffer
	w, err := segment.NewWriter(&buf, ts, segment.Options{})
	if err != nil {
		a.T.Fatal(err)
	}
	for _, r := range rows {
		tm := r.Time
		if tm.IsZero() {
			tm = CommitAt(r.LSN)
		}
		if err := w.Write(segment.Meta{LSN: r.LSN, Seq: r.Seq, Op: r.Op, CommitTime: tm, XID: uint32(r.LSN)}, r.Vals); err != nil {
			a.T.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		a.T.Fatal(err)
	}
	st := w.Stats()
	sum := sha256.Sum256(buf.Bytes())
	ref := schemas.ObjectRef{
		Key:   schemas.ObjectDir(a.Tenant, kind, st.First.LSN) + schemas.TableKeyName(ts.Schema, ts.Name) + "-" + ts.Version + ".parquet",
		Table: ts.QualifiedName(), SchemaVersion: ts.Version,
		Rows: st.Rows, Bytes: int64(buf.Len()), SHA256: hex.EncodeToString(sum[:]), First: st.First, Last: st.Last,
		MinTime: st.MinTime,
	}
	if err := a.Store.Put(context.Background(), ref.Key, bytes.NewReader(buf.Bytes())); err != nil {
		a.T.Fatal(err)
	}
	a.times[ref.Key] = [2]time.Time{st.MinTime, st.MaxTime}
	return ref
}

// SnapshotObject writes rows (each a full row) as a snapshot object at lsn.
func (a *ArchiveBuilder) SnapshotObject(ts *schemas.TableSchema, lsn schemas.LSN, rows ...[]schemas.Value) schemas.ObjectRef {
	a.T.Helper()
	ch := make([]Change, len(rows))
	for i, r := range rows {
		ch[i] = Change{LSN: lsn, Seq: uint32(i + 1), Op: schemas.OpInsert, Vals: r}
	}
	return a.Object(ts, "snapshots", ch)
}

// Snapshot appends a snapshot entry at lsn listing objs; tables describes
// tables without rows.
func (a *ArchiveBuilder) Snapshot(lsn schemas.LSN, objs []schemas.ObjectRef, tables ...*schemas.TableSchema) *schemas.ManifestEntry {
	a.T.Helper()
	e := &schemas.ManifestEntry{Tenant: a.Tenant, Kind: schemas.EntrySnapshot, Created: time.Now().UTC(),
		First: schemas.Pos{LSN: lsn, Seq: math.MaxUint32}, Last: schemas.Pos{LSN: lsn, Seq: math.MaxUint32},
		MinTime: CommitAt(lsn), MaxTime: CommitAt(lsn), CompleteLSN: lsn, CompleteTime: CommitAt(lsn),
		Objects: objs, Tables: map[string]*schemas.TableSchema{}}
	for _, ts := range tables {
		e.Tables[ts.Version] = ts
	}
	return a.appendEntry(e)
}

// Segment appends a segment entry listing objs (with their schemas), complete
// up to the last position of its objects.
func (a *ArchiveBuilder) Segment(tables []*schemas.TableSchema, objs ...schemas.ObjectRef) *schemas.ManifestEntry {
	a.T.Helper()
	e := &schemas.ManifestEntry{Tenant: a.Tenant, Kind: schemas.EntrySegment, Created: time.Now().UTC(),
		Objects: objs, Tables: map[string]*schemas.TableSchema{}}
	for _, ts := range tables {
		e.Tables[ts.Version] = ts
	}
	for i, o := range objs {
		tm := a.times[o.Key]
		if i == 0 || o.First.Less(e.First) {
			e.First = o.First
		}
		if e.Last.Less(o.Last) {
			e.Last = o.Last
		}
		if i == 0 || tm[0].Before(e.MinTime) {
			e.MinTime = tm[0]
		}
		if tm[1].After(e.MaxTime) {
			e.MaxTime = tm[1]
		}
	}
	e.CompleteLSN, e.CompleteTime = e.Last.LSN, e.MaxTime
	return a.appendEntry(e)
}

func (a *ArchiveBuilder) appendEntry(e *schemas.ManifestEntry) *schemas.ManifestEntry {
	a.T.Helper()
	for _, o := range e.Objects {
		if e.Tables[o.SchemaVersion] == nil {
			a.T.Fatalf("test entry: object %s: schema %s not given", o.Key, o.SchemaVersion)
		}
	}
	a.seq++
	if err := catalog.Append(context.Background(), a.Store, e, a.seq); err != nil {
		a.T.Fatal(err)
	}
	return e
}

// Load reads the tenant back as the CLI does.
func (a *ArchiveBuilder) Load() *catalog.Tenant {
	a.T.Helper()
	tn, err := catalog.LoadTenant(context.Background(), a.Store, a.Tenant)
	if err != nil {
		a.T.Fatal(err)
	}
	return tn
}

// TableSchemaFor builds a table of cols; the Key columns, in order, are its
// primary key (none: REPLICA IDENTITY FULL without a key, a multiset).
func TableSchemaFor(schema, name string, cols ...schemas.Column) *schemas.TableSchema {
	ts := &schemas.TableSchema{Schema: schema, Name: name, ReplicaIdentity: 'd', Columns: slices.Clone(cols)}
	for _, c := range cols {
		if c.Key {
			ts.PrimaryKey = append(ts.PrimaryKey, c.Name)
		}
	}
	if len(ts.PrimaryKey) == 0 {
		ts.ReplicaIdentity = 'f'
		for i := range ts.Columns {
			ts.Columns[i].Key = true
		}
	}
	ts.ComputeVersion()
	return ts
}
