package replayer_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// at is the commit time of the transaction at LSN l in these tests.
func at(l schemas.LSN) time.Time { return t0.Add(time.Duration(l) * time.Second) }

func pos(l schemas.LSN, seq uint32) schemas.Pos { return schemas.Pos{LSN: l, Seq: seq} }

// planTables are two tables, items in two versions.
var (
	itemsV1 = mkTable("app", "items", "id", "note")
	itemsV2 = mkTable("app", "items", "id", "note", "extra")
	orders  = mkTable("app", "orders", "id")
)

func mkTable(schema, name string, cols ...string) *schemas.TableSchema {
	ts := &schemas.TableSchema{Schema: schema, Name: name, ReplicaIdentity: 'd', PrimaryKey: []string{cols[0]}}
	for i, c := range cols {
		col := schemas.Column{Name: c, TypeOID: 25, TypeMod: -1, TypeName: "text"}
		if i == 0 {
			col = schemas.Column{Name: c, TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true}
		}
		ts.Columns = append(ts.Columns, col)
	}
	ts.ComputeVersion()
	return ts
}

func ref(id schemas.TenantID, kind string, ts *schemas.TableSchema, first, last schemas.Pos) schemas.ObjectRef {
	return schemas.ObjectRef{
		Key:   schemas.ObjectDir(id, kind, first.LSN) + schemas.TableKeyName(ts.Schema, ts.Name) + "-" + ts.Version + ".parquet",
		Table: ts.QualifiedName(), SchemaVersion: ts.Version, Rows: 1, First: first, Last: last,
	}
}

func tablesOf(tss ...*schemas.TableSchema) map[string]*schemas.TableSchema {
	m := map[string]*schemas.TableSchema{}
	for _, ts := range tss {
		m[ts.Version] = ts
	}
	return m
}

// segEntry is a segment entry holding objs, complete up to its last
// position.
func segEntry(id schemas.TenantID, seq uint64, objs ...schemas.ObjectRef) *schemas.ManifestEntry {
	e := &schemas.ManifestEntry{Version: schemas.ManifestVersion, Tenant: id, Seq: seq, Kind: schemas.EntrySegment,
		Objects: objs, Tables: tablesOf(itemsV1, itemsV2, orders)}
	for i, o := range objs {
		if i == 0 || o.First.Less(e.First) {
			e.First = o.First
		}
		if e.Last.Less(o.Last) {
			e.Last = o.Last
		}
	}
	e.MinTime, e.MaxTime = at(e.First.LSN), at(e.Last.LSN)
	e.CompleteLSN, e.CompleteTime = e.Last.LSN, e.MaxTime
	return e
}

func snapEntry(id schemas.TenantID, seq uint64, lsn schemas.LSN, tables ...*schemas.TableSchema) *schemas.ManifestEntry {
	e := &schemas.ManifestEntry{Version: schemas.ManifestVersion, Tenant: id, Seq: seq, Kind: schemas.EntrySnapshot,
		First: pos(lsn, 1), Last: pos(lsn, 1<<32-1), MinTime: at(lsn), MaxTime: at(lsn),
		CompleteLSN: lsn, CompleteTime: at(lsn), Tables: tablesOf(itemsV1, itemsV2, orders)}
	for _, ts := range tables {
		e.Objects = append(e.Objects, ref(id, "snapshots", ts, pos(lsn, 1), pos(lsn, 9)))
	}
	return e
}

func tenantOf(t testing.TB, id schemas.TenantID, entries ...*schemas.ManifestEntry) *catalog.Tenant {
	t.Helper()
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			t.Fatalf("test entry: %v", err)
		}
	}
	r, err := catalog.ComputeRange(entries, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &catalog.Tenant{ID: id, Entries: entries, Range: r}
}

// planArchive: snapshot at 0x100; changes 0x200..0x300; a synthesized
// snapshot at 0x350; changes 0x400..0x500 (items changes version at
// 0x480); changes 0x600..0x700.
func planArchive(t testing.TB) (*catalog.Tenant, map[string]schemas.ObjectRef) {
	const id = "acme"
	o := map[string]schemas.ObjectRef{
		"e2.items":   ref(id, "segments", itemsV1, pos(0x200, 1), pos(0x300, 2)),
		"e2.orders":  ref(id, "segments", orders, pos(0x250, 1), pos(0x250, 1)),
		"e4.itemsV2": ref(id, "segments", itemsV2, pos(0x480, 1), pos(0x500, 1)),
		"e4.items":   ref(id, "segments", itemsV1, pos(0x400, 1), pos(0x460, 3)),
		"e4.orders":  ref(id, "segments", orders, pos(0x450, 1), pos(0x450, 1)),
		"e5.items":   ref(id, "segments", itemsV2, pos(0x600, 1), pos(0x700, 1)),
	}
	e1 := snapEntry(id, 1, 0x100, itemsV1)
	e2 := segEntry(id, 2, o["e2.items"], o["e2.orders"])
	e3 := snapEntry(id, 3, 0x350, itemsV1, orders)
	// Listed out of order on purpose: the plan orders by position.
	e4 := segEntry(id, 4, o["e4.itemsV2"], o["e4.orders"], o["e4.items"])
	e5 := segEntry(id, 5, o["e5.items"])
	for k, e := range map[string]*schemas.ManifestEntry{"e1": e1, "e3": e3} {
		for _, obj := range e.Objects {
			o[k+"."+strings.TrimPrefix(obj.Table, "app.")] = obj
		}
	}
	return tenantOf(t, id, e1, e2, e3, e4, e5), o
}

// describe renders a plan as "snapshot N; table: obj obj | table: ...".
func describe(p *replayer.Plan, names map[string]schemas.ObjectRef) string {
	byKey := map[string]string{}
	for n, o := range names {
		byKey[o.Key] = n
	}
	var b strings.Builder
	if p.Snapshot != nil {
		fmt.Fprintf(&b, "snapshot %d @%s;", p.Snapshot.Seq, p.Start)
	} else {
		fmt.Fprintf(&b, "baseline @%s;", p.Start)
	}
	for _, tp := range p.Tables {
		fmt.Fprintf(&b, " %s(%d):", tp.Name, tp.SnapshotObjects)
		for _, o := range tp.Objects {
			b.WriteString(" " + byKey[o.Key])
		}
		if tp.Schema == nil || tp.Versions[tp.Objects[len(tp.Objects)-1].SchemaVersion] != tp.Schema {
			b.WriteString(" BAD-SCHEMA")
		}
	}
	return b.String()
}

func TestPlanRestore(t *testing.T) {
	tenant, objs := planArchive(t)
	cases := []struct {
		name   string
		target replayer.Target
		want   string
	}{
		{"the first snapshot's own point", replayer.Target{LSN: 0x100},
			"snapshot 1 @0/100; app.items(1): e1.items"},
		{"before a table's first change", replayer.Target{LSN: 0x240},
			"snapshot 1 @0/100; app.items(1): e1.items e2.items"},
		{"changes after the first snapshot", replayer.Target{LSN: 0x260},
			"snapshot 1 @0/100; app.items(1): e1.items e2.items | app.orders(0): e2.orders"},
		{"by time, before the second snapshot", replayer.Target{Time: at(0x349)},
			"snapshot 1 @0/100; app.items(1): e1.items e2.items | app.orders(0): e2.orders"},
		{"the second snapshot by LSN", replayer.Target{LSN: 0x350},
			"snapshot 3 @0/350; app.items(1): e3.items | app.orders(1): e3.orders"},
		{"the second snapshot by time", replayer.Target{Time: at(0x350)},
			"snapshot 3 @0/350; app.items(1): e3.items | app.orders(1): e3.orders"},
		{"segments ordered by first position", replayer.Target{LSN: 0x490},
			"snapshot 3 @0/350; app.items(1): e3.items e4.items e4.itemsV2 | app.orders(1): e3.orders e4.orders"},
		{"an object starting after an LSN target is left out", replayer.Target{LSN: 0x470},
			"snapshot 3 @0/350; app.items(1): e3.items e4.items | app.orders(1): e3.orders e4.orders"},
		{"the end of the range", replayer.Target{LSN: 0x700},
			"snapshot 3 @0/350; app.items(1): e3.items e4.items e4.itemsV2 e5.items | app.orders(1): e3.orders e4.orders"},
		{"by time inside the last entry", replayer.Target{Time: at(0x650)},
			"snapshot 3 @0/350; app.items(1): e3.items e4.items e4.itemsV2 e5.items | app.orders(1): e3.orders e4.orders"},
		{"by time before an entry's first commit", replayer.Target{Time: at(0x5ff)},
			"snapshot 3 @0/350; app.items(1): e3.items e4.items e4.itemsV2 | app.orders(1): e3.orders e4.orders"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := replayer.PlanRestore(tenant, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(tc.want, " | ", " ")
			if got := describe(p, objs); got != want {
				t.Errorf("plan:\n got %s\nwant %s", got, want)
			}
			if p.Tenant != "acme" || p.Target != tc.target || p.Range != tenant.Range {
				t.Errorf("plan header %q %v %v", p.Tenant, p.Target, p.Range)
			}
		})
	}
}

func TestPlanRestoreFromBaseline(t *testing.T) {
	const id = "new tenant"
	seg := ref(id, "segments", orders, pos(0x200, 1), pos(0x300, 1))
	e1 := segEntry(id, 1, seg)
	r, err := catalog.ComputeRange([]*schemas.ManifestEntry{e1}, &schemas.Baseline{LSN: 0x100, Time: at(0x100)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tenant := &catalog.Tenant{ID: id, Entries: []*schemas.ManifestEntry{e1}, Range: r}
	p, err := replayer.PlanRestore(tenant, replayer.Target{LSN: 0x100})
	if err != nil {
		t.Fatal(err)
	}
	if p.Snapshot != nil || p.Start != 0x100 || len(p.Tables) != 0 {
		t.Fatalf("at the baseline: %s", describe(p, nil))
	}
	p, err = replayer.PlanRestore(tenant, replayer.Target{Time: at(0x250)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Snapshot != nil || len(p.Tables) != 1 || len(p.Tables[0].Objects) != 1 || p.Tables[0].SnapshotObjects != 0 {
		t.Fatalf("after the baseline: %s", describe(p, map[string]schemas.ObjectRef{"seg": seg}))
	}
}

func TestPlanRestoreOutOfRange(t *testing.T) {
	tenant, _ := planArchive(t)
	rng := tenant.Range.String()
	for _, target := range []replayer.Target{
		{LSN: 0xff}, {LSN: 1}, {LSN: 0x701}, {LSN: 0xFFFFFFFFFFFFFFFF},
		{Time: at(0xff)}, {Time: at(0x100).Add(-time.Microsecond)}, {Time: at(0x700).Add(time.Nanosecond)}, {Time: at(0x10000)},
	} {
		_, err := replayer.PlanRestore(tenant, target)
		if !errors.Is(err, replayer.ErrOutOfRange) {
			t.Errorf("PlanRestore(%s) = %v, want ErrOutOfRange", target, err)
			continue
		}
		for _, w := range []string{rng, target.String(), "tenantwal ls --tenant acme"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("PlanRestore(%s): error %q does not mention %q", target, err, w)
			}
		}
	}
	for _, target := range []replayer.Target{{}, {LSN: 0x200, Time: at(0x200)}} {
		if _, err := replayer.PlanRestore(tenant, target); err == nil || errors.Is(err, replayer.ErrOutOfRange) {
			t.Errorf("PlanRestore(%+v) = %v, want a bad-target error", target, err)
		}
	}
	// A hostile id is quoted for the shell in the hint.
	tenant.ID = "it's"
	for _, e := range tenant.Entries {
		e.Tenant = tenant.ID
	}
	_, err := replayer.PlanRestore(tenant, replayer.Target{LSN: 1})
	if err == nil || !strings.Contains(err.Error(), `--tenant 'it'\''s'`) {
		t.Errorf("hostile id hint: %v", err)
	}
}

func TestPlanRestoreRefusesForeignObjects(t *testing.T) {
	tenant, _ := planArchive(t)
	foreign := ref("acme2", "segments", orders, pos(0x420, 1), pos(0x420, 1))
	tenant.Entries[3].Objects = append(tenant.Entries[3].Objects, foreign)
	_, err := replayer.PlanRestore(tenant, replayer.Target{LSN: 0x700})
	if err == nil || !strings.Contains(err.Error(), foreign.Key) || !strings.Contains(err.Error(), "outside tenant") {
		t.Fatalf("PlanRestore with another tenant's object: %v", err)
	}

	tenant, _ = planArchive(t)
	tenant.Entries[1].Tenant = "other"
	if _, err := replayer.PlanRestore(tenant, replayer.Target{LSN: 0x700}); err == nil || !strings.Contains(err.Error(), `"other"`) {
		t.Fatalf("PlanRestore with another tenant's entry: %v", err)
	}

	tenant, _ = planArchive(t)
	tenant.Entries[1].Objects[0].SchemaVersion = "nope"
	if _, err := replayer.PlanRestore(tenant, replayer.Target{LSN: 0x700}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("PlanRestore with an unknown schema version: %v", err)
	}
}

// A segment entry rewritten after a crash overlaps the previous one: both
// objects are planned, the wider one (earlier first position) first, and
// ties go by entry number.
func TestPlanRestoreOverlappingEntries(t *testing.T) {
	const id = "acme"
	e1 := snapEntry(id, 1, 0x100, orders)
	a := ref(id, "segments", orders, pos(0x200, 1), pos(0x300, 1))
	b := ref(id, "segments", orders, pos(0x200, 1), pos(0x400, 1))
	c := ref(id, "segments", orders, pos(0x150, 1), pos(0x250, 1))
	tenant := tenantOf(t, id, e1, segEntry(id, 2, a), segEntry(id, 3, b), segEntry(id, 4, c), segEntry(id, 5, a))
	p, err := replayer.PlanRestore(tenant, replayer.Target{LSN: 0x400})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]schemas.ObjectRef{"snap": e1.Objects[0], "a": a, "b": b, "c": c}
	if got, want := describe(p, names), "snapshot 1 @0/100; app.orders(1): snap c a b a"; got != want {
		t.Fatalf("plan:\n got %s\nwant %s", got, want)
	}
}

// A snapshot too big for one flush is archived in several entries; only
// the complete one (with CompleteLSN, listing every object) is a starting
// point.
func TestPlanRestoreSkipsPartialSnapshots(t *testing.T) {
	const id = "acme"
	e1 := snapEntry(id, 1, 0x100, orders)
	seg := ref(id, "segments", orders, pos(0x200, 1), pos(0x300, 1))
	part1 := snapEntry(id, 3, 0x350, orders)
	part1.CompleteLSN, part1.CompleteTime = 0, time.Time{}
	part1.Last = part1.Objects[0].Last
	seg2 := ref(id, "segments", orders, pos(0x400, 1), pos(0x500, 1))
	tenant := tenantOf(t, id, e1, segEntry(id, 2, seg), part1, segEntry(id, 4, seg2))
	names := map[string]schemas.ObjectRef{"snap": e1.Objects[0], "seg": seg, "part1": part1.Objects[0], "seg2": seg2}
	p, err := replayer.PlanRestore(tenant, replayer.Target{LSN: 0x450})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describe(p, names), "snapshot 1 @0/100; app.orders(1): snap seg seg2"; got != want {
		t.Fatalf("with a partial snapshot:\n got %s\nwant %s", got, want)
	}
	done := snapEntry(id, 5, 0x350, orders)
	done.Objects = append([]schemas.ObjectRef{part1.Objects[0]}, done.Objects...)
	names["done"] = done.Objects[1]
	tenant = tenantOf(t, id, e1, segEntry(id, 2, seg), part1, segEntry(id, 4, seg2), done)
	p, err = replayer.PlanRestore(tenant, replayer.Target{LSN: 0x450})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describe(p, names), "snapshot 5 @0/350; app.orders(2): part1 done seg2"; got != want {
		t.Fatalf("with the complete snapshot:\n got %s\nwant %s", got, want)
	}
}

// TestPlanFollowsTableRename plans restores around a table renamed (items
// to goods, one generation) and a new table created under the old name
// (another generation): each restore point has one table per generation,
// under its name at that point. An object whose first change is after a
// time target does not give the table its name.
func TestPlanFollowsTableRename(t *testing.T) {
	const id = "acme"
	gen := func(ts *schemas.TableSchema, g uint32) *schemas.TableSchema {
		c := *ts
		c.Generation = g
		c.ComputeVersion()
		return &c
	}
	items, goods, items2 := gen(itemsV1, 7), gen(mkTable("app", "goods", "id", "note"), 7), gen(mkTable("app", "items", "id", "w"), 9)
	withTimes := func(r schemas.ObjectRef) schemas.ObjectRef { r.MinTime = at(r.First.LSN); return r }
	entry := func(seq uint64, objs ...schemas.ObjectRef) *schemas.ManifestEntry {
		e := segEntry(id, seq, objs...)
		e.Tables = tablesOf(items, goods, items2)
		return e
	}
	ten := tenantOf(t, id,
		snapEntry(id, 1, 0x100),
		entry(2, withTimes(ref(id, "segments", items, pos(0x200, 1), pos(0x200, 1))), withTimes(ref(id, "segments", goods, pos(0x300, 1), pos(0x300, 1)))),
		entry(3, withTimes(ref(id, "segments", items2, pos(0x400, 1), pos(0x400, 1)))),
	)
	for _, c := range []struct {
		target replayer.Target
		want   string // table: objects
	}{
		{replayer.Target{LSN: 0x250}, "app.items: 1"},
		{replayer.Target{Time: at(0x250)}, "app.items: 1"},
		{replayer.Target{LSN: 0x300}, "app.goods: 2"},
		{replayer.Target{Time: at(0x350)}, "app.goods: 2"},
		{replayer.Target{LSN: 0x400}, "app.goods: 2; app.items: 1"},
	} {
		p, err := replayer.PlanRestore(ten, c.target)
		if err != nil {
			t.Fatalf("%s: %v", c.target, err)
		}
		var got []string
		for _, tp := range p.Tables {
			got = append(got, fmt.Sprintf("%s: %d", tp.Name, len(tp.Objects)))
			if tp.Schema.QualifiedName() != tp.Name {
				t.Errorf("%s: table %s planned with the version of %s", c.target, tp.Name, tp.Schema.QualifiedName())
			}
		}
		if s := strings.Join(got, "; "); s != c.want {
			t.Errorf("%s: planned %s, want %s", c.target, s, c.want)
		}
	}
}
