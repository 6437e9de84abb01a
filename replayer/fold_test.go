package replayer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/schemas"
)

const foldTenant schemas.TenantID = "acme"

// foldItems is a pool table: id is the key, big stands for a TOASTed column.
var foldItems = TableSchemaFor("app", "items",
	schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true},
	schemas.Column{Name: "tenant_id", TypeOID: 25, TypeMod: -1, TypeName: "text", NotNull: true},
	schemas.Column{Name: "note", TypeOID: 25, TypeMod: -1, TypeName: "text"},
	schemas.Column{Name: "big", TypeOID: 25, TypeMod: -1, TypeName: "text"},
)

func init() {
	foldItems.TenantColumn = "tenant_id"
	foldItems.ComputeVersion()
}

var foldTables = []*schemas.TableSchema{foldItems}

// item is a full row of foldItems.
func item(id, note, big string) []schemas.Value {
	return []schemas.Value{Txt(id), Txt(string(foldTenant)), Txt(note), Txt(big)}
}

// oldKey is the old-key tuple of a delete: the key, nulls elsewhere.
func oldKey(id string) []schemas.Value { return []schemas.Value{Txt(id), Null, Null, Null} }

func ins(l schemas.LSN, seq uint32, vals []schemas.Value) Change {
	return Change{LSN: l, Seq: seq, Op: schemas.OpInsert, Vals: vals}
}

func upd(l schemas.LSN, seq uint32, vals []schemas.Value) Change {
	return Change{LSN: l, Seq: seq, Op: schemas.OpUpdate, Vals: vals}
}

func del(l schemas.LSN, seq uint32, vals []schemas.Value) Change {
	return Change{LSN: l, Seq: seq, Op: schemas.OpDelete, Vals: vals}
}

// foldResult folds table name of a's tenant at target as Apply would and
// renders its rows sorted, "v|v|v" with NULL as "∅", one line per copy.
func foldResult(t *testing.T, a *ArchiveBuilder, target Target, name string) ([]string, *fold, error) {
	t.Helper()
	plan, err := PlanRestore(a.Load(), target)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(plan.Tables, func(tp *TablePlan) bool { return tp.Name == name })
	if i < 0 {
		return nil, nil, nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out rowStrings
	f, err := loadTable(ctx, a.Store, plan, plan.Tables[i], t.TempDir(), &out)
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(out)
	return out, f, nil
}

// rowStrings renders the rows it receives "v|v|v" with NULL as "∅", one
// line per copy.
type rowStrings []string

func (o *rowStrings) row(vals []schemas.Value, n int) error {
	s := make([]string, len(vals))
	for i, v := range vals {
		switch v.Kind {
		case schemas.ValueText:
			s[i] = string(v.Data)
		case schemas.ValueNull:
			s[i] = "∅"
		default:
			s[i] = "?" + string(rune(v.Kind))
		}
	}
	for range n {
		*o = append(*o, strings.Join(s, "|"))
	}
	return nil
}

func mustFold(t *testing.T, a *ArchiveBuilder, target Target, name string, want ...string) *fold {
	t.Helper()
	got, f, err := foldResult(t, a, target, name)
	if err != nil {
		t.Fatalf("fold %s at %s: %v", name, target, err)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("fold %s at %s:\n got %q\nwant %q", name, target, got, want)
	}
	return f
}

func TestFoldInsertUpdateDelete(t *testing.T) {
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(foldItems, 0x100,
		item("1", "one", "B1"), item("2", "two", "B2"), item("3", "three", "B3"))}, foldItems)
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		ins(0x200, 1, item("4", "four", "B4")),
		upd(0x300, 1, item("1", "uno", "B1'")),
		del(0x300, 2, oldKey("2")),
		upd(0x300, 3, item("4", "cuatro", "B4")),
	}))
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		del(0x400, 1, oldKey("4")),
		ins(0x400, 2, item("4", "again", "B4'")),
		del(0x500, 1, oldKey("99")), // a row the archive never held
	}))
	mustFold(t, a, Target{LSN: 0x100}, "app.items", "1|acme|one|B1", "2|acme|two|B2", "3|acme|three|B3")
	mustFold(t, a, Target{LSN: 0x2ff}, "app.items", "1|acme|one|B1", "2|acme|two|B2", "3|acme|three|B3", "4|acme|four|B4")
	f := mustFold(t, a, Target{LSN: 0x300}, "app.items", "1|acme|uno|B1'", "3|acme|three|B3", "4|acme|cuatro|B4")
	if f.applied != 4 || f.orphans != 0 {
		t.Errorf("at 0/300: %d changes applied, %d orphans; want 4, 0", f.applied, f.orphans)
	}
	f = mustFold(t, a, Target{LSN: 0x500}, "app.items", "1|acme|uno|B1'", "3|acme|three|B3", "4|acme|again|B4'")
	if f.orphans != 1 {
		t.Errorf("delete of an unknown row: %d orphans counted, want 1", f.orphans)
	}
}

// A key-changing update is stored as a delete of the old key and an update
// at the same position; unchanged TOAST values come from the old row.
func TestFoldKeyChange(t *testing.T) {
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(foldItems, 0x100,
		item("1", "one", "B1"), item("2", "two", "B2"))}, foldItems)
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		del(0x200, 1, oldKey("1")),
		upd(0x200, 1, []schemas.Value{Txt("10"), Txt("acme"), Txt("ten"), Unchanged}),
		// Swap keys 2 and 3 through 10 is not possible with a unique key;
		// move 2 to 20 with every non-key column unchanged.
		del(0x300, 1, oldKey("2")),
		upd(0x300, 1, []schemas.Value{Txt("20"), Txt("acme"), Unchanged, Unchanged}),
		// The new key of a later key change is the old key of an earlier one.
		del(0x400, 1, oldKey("10")),
		upd(0x400, 1, []schemas.Value{Txt("1"), Txt("acme"), Txt("one again"), Unchanged}),
	}))
	mustFold(t, a, Target{LSN: 0x200}, "app.items", "10|acme|ten|B1", "2|acme|two|B2")
	mustFold(t, a, Target{LSN: 0x400}, "app.items", "1|acme|one again|B1", "20|acme|two|B2")
}

// The same changes read twice (an object listed by two entries, an entry
// rewritten after a crash that overlaps the previous one) are applied once.
func TestFoldDuplicatePositions(t *testing.T) {
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(foldItems, 0x100, item("1", "one", "B1"))}, foldItems)
	first := a.Object(foldItems, "segments", []Change{
		ins(0x200, 1, item("2", "two", "B2")),
		del(0x300, 1, oldKey("1")),
		upd(0x300, 1, []schemas.Value{Txt("11"), Txt("acme"), Unchanged, Unchanged}),
	})
	a.Segment(foldTables, first)
	a.Segment(foldTables, first) // listed twice
	// Rewritten after a crash: starts inside the first one and goes on.
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		del(0x300, 1, oldKey("1")),
		upd(0x300, 1, []schemas.Value{Txt("11"), Txt("acme"), Unchanged, Unchanged}),
		upd(0x400, 1, item("2", "two'", "B2'")),
	}))
	// And one that restarts at the snapshot.
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		ins(0x100, 1, item("1", "one", "B1")),
		ins(0x200, 1, item("2", "two", "B2")),
		del(0x500, 1, oldKey("2")),
	}))
	f := mustFold(t, a, Target{LSN: 0x400}, "app.items", "11|acme|one|B1", "2|acme|two'|B2'")
	if f.applied != 4 || f.orphans != 0 {
		t.Errorf("%d changes applied, %d orphans; want 4 and 0", f.applied, f.orphans)
	}
	mustFold(t, a, Target{LSN: 0x500}, "app.items", "11|acme|one|B1")
}

// Tables keyed by the whole row (REPLICA IDENTITY FULL, no primary key)
// are multisets: identical rows are kept, and a duplicate is never applied
// twice.
func TestFoldMultiset(t *testing.T) {
	logs := TableSchemaFor("app", "logs",
		schemas.Column{Name: "tenant_id", TypeOID: 25, TypeMod: -1, TypeName: "text"},
		schemas.Column{Name: "msg", TypeOID: 25, TypeMod: -1, TypeName: "text"})
	logs.TenantColumn = "tenant_id"
	logs.ComputeVersion()
	row := func(msg string) []schemas.Value { return []schemas.Value{Txt("acme"), Txt(msg)} }
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(logs, 0x100, row("a"), row("a"), row("b"))}, logs)
	obj := a.Object(logs, "segments", []Change{
		ins(0x200, 1, row("a")),
		del(0x300, 1, row("b")),
		del(0x300, 2, row("a")),
		// UPDATE ... SET msg = 'c' of one "a": old row, then new row.
		del(0x400, 1, row("a")),
		upd(0x400, 1, row("c")),
	})
	a.Segment([]*schemas.TableSchema{logs}, obj)
	a.Segment([]*schemas.TableSchema{logs}, obj)
	mustFold(t, a, Target{LSN: 0x100}, "app.logs", "acme|a", "acme|a", "acme|b")
	mustFold(t, a, Target{LSN: 0x200}, "app.logs", "acme|a", "acme|a", "acme|a", "acme|b")
	mustFold(t, a, Target{LSN: 0x400}, "app.logs", "acme|a", "acme|c")
}

// REPLICA IDENTITY USING INDEX on other columns than the primary key: old
// keys carry the index's columns only.
func TestFoldReplicaIdentityIndex(t *testing.T) {
	ts := TableSchemaFor("app", "users",
		schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", NotNull: true},
		schemas.Column{Name: "email", TypeOID: 25, TypeMod: -1, TypeName: "text", NotNull: true, Key: true},
		schemas.Column{Name: "name", TypeOID: 25, TypeMod: -1, TypeName: "text"})
	ts.PrimaryKey, ts.ReplicaIdentity = []string{"id"}, 'i'
	ts.ComputeVersion()
	row := func(id, email, name string) []schemas.Value { return []schemas.Value{Txt(id), Txt(email), Txt(name)} }
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(ts, 0x100, row("1", "a@x", "A"), row("2", "b@x", "B"))}, ts)
	a.Segment([]*schemas.TableSchema{ts}, a.Object(ts, "segments", []Change{
		del(0x200, 1, []schemas.Value{Null, Txt("a@x"), Null}),
		upd(0x300, 1, row("3", "b@x", "B3")), // the primary key changed, the identity did not
	}))
	mustFold(t, a, Target{LSN: 0x300}, "app.users", "3|b@x|B3")
}

// Unchanged TOAST values come from the previous version of the row, in the
// snapshot or in an older segment; without one the restore fails.
func TestFoldUnchangedToast(t *testing.T) {
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(foldItems, 0x100, item("1", "one", "B1"))}, foldItems)
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		upd(0x200, 1, []schemas.Value{Txt("1"), Txt("acme"), Txt("uno"), Unchanged}),
		ins(0x200, 2, item("2", "two", "B2")),
	}))
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		upd(0x300, 1, []schemas.Value{Txt("2"), Txt("acme"), Txt("dos"), Unchanged}),
		upd(0x300, 2, []schemas.Value{Txt("1"), Txt("acme"), Unchanged, Unchanged}),
	}))
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		upd(0x400, 1, []schemas.Value{Txt("7"), Txt("acme"), Txt("seven"), Unchanged}),
	}))
	mustFold(t, a, Target{LSN: 0x300}, "app.items", "1|acme|uno|B1", "2|acme|dos|B2")
	_, _, err := foldResult(t, a, Target{LSN: 0x400}, "app.items")
	if err == nil || !strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), "0/400#1") ||
		!strings.Contains(err.Error(), "no earlier version") {
		t.Fatalf("unchanged TOAST value with no earlier version: %v", err)
	}
	// The error names the object, so the damaged part of the archive is known.
	if !strings.Contains(err.Error(), "segments/") {
		t.Errorf("error %q does not name the object", err)
	}
}

// A time target includes every transaction whose commit time is at or
// before it, all transactions of one commit time included; an LSN target
// every transaction that committed at or before it.
func TestFoldTargets(t *testing.T) {
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(foldItems, 0x100, item("1", "one", "B1"))}, foldItems)
	tm := CommitAt(0x500)
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		{LSN: 0x500, Seq: 1, Op: schemas.OpInsert, Time: tm, Vals: item("2", "a", "B")},
		{LSN: 0x500, Seq: 2, Op: schemas.OpUpdate, Time: tm, Vals: item("1", "a", "B")},
		{LSN: 0x510, Seq: 1, Op: schemas.OpInsert, Time: tm, Vals: item("3", "same time", "B")},
		{LSN: 0x510, Seq: 7, Op: schemas.OpUpdate, Time: tm, Vals: item("2", "same time", "B")},
		{LSN: 0x520, Seq: 1, Op: schemas.OpInsert, Time: tm.Add(time.Microsecond), Vals: item("4", "later", "B")},
	}))
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		{LSN: 0x600, Seq: 1, Op: schemas.OpDelete, Time: tm.Add(time.Second), Vals: oldKey("1")},
	}))
	all := []string{"1|acme|a|B", "2|acme|same time|B", "3|acme|same time|B"}
	mustFold(t, a, Target{Time: tm.Add(-time.Nanosecond)}, "app.items", "1|acme|one|B1")
	mustFold(t, a, Target{Time: tm}, "app.items", all...)
	mustFold(t, a, Target{Time: tm.Add(999 * time.Nanosecond)}, "app.items", all...)
	mustFold(t, a, Target{Time: tm.Add(time.Microsecond)}, "app.items", append(all, "4|acme|later|B")...)
	mustFold(t, a, Target{LSN: 0x50f}, "app.items", "1|acme|a|B", "2|acme|a|B")
	mustFold(t, a, Target{LSN: 0x510}, "app.items", all...)
	mustFold(t, a, Target{LSN: 0x600}, "app.items", "2|acme|same time|B", "3|acme|same time|B", "4|acme|later|B")
}

// TRUNCATE (archived for tables with a fixed tenant) empties the table.
func TestFoldTruncate(t *testing.T) {
	ts := TableSchemaFor("acme", "notes",
		schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true},
		schemas.Column{Name: "body", TypeOID: 25, TypeMod: -1, TypeName: "text"})
	row := func(id, body string) []schemas.Value { return []schemas.Value{Txt(id), Txt(body)} }
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(ts, 0x100, row("1", "x"), row("2", "y"))}, ts)
	a.Segment([]*schemas.TableSchema{ts}, a.Object(ts, "segments", []Change{
		ins(0x200, 1, row("3", "z")),
		{LSN: 0x300, Seq: 1, Op: schemas.OpTruncate, Vals: []schemas.Value{Null, Null}},
		ins(0x300, 2, row("1", "after")),
	}))
	mustFold(t, a, Target{LSN: 0x200}, "acme.notes", "1|x", "2|y", "3|z")
	mustFold(t, a, Target{LSN: 0x300}, "acme.notes", "1|after")
}

// A row of another tenant is refused, not restored.
func TestFoldRefusesForeignRows(t *testing.T) {
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(foldItems, 0x100, item("1", "one", "B1"))}, foldItems)
	a.Segment(foldTables, a.Object(foldItems, "segments", []Change{
		ins(0x200, 1, []schemas.Value{Txt("2"), Txt("acme2"), Null, Null}),
	}))
	_, _, err := foldResult(t, a, Target{LSN: 0x200}, "app.items")
	if err == nil || !strings.Contains(err.Error(), "another tenant") {
		t.Fatalf("row of another tenant: %v", err)
	}
}

// A table that changed shape and back: the archiver writes one object per
// version, so the two objects' positions interleave. Every change is
// applied once, in position order.
func TestFoldInterleavedVersions(t *testing.T) {
	v1 := TableSchemaFor("app", "t",
		schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true},
		schemas.Column{Name: "note", TypeOID: 25, TypeMod: -1, TypeName: "text"})
	v2 := TableSchemaFor("app", "t",
		schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true},
		schemas.Column{Name: "note", TypeOID: 25, TypeMod: -1, TypeName: "text"},
		schemas.Column{Name: "extra", TypeOID: 25, TypeMod: -1, TypeName: "text"})
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(v1, 0x100, []schemas.Value{Txt("1"), Txt("one")})}, v1)
	a.Segment([]*schemas.TableSchema{v1, v2},
		a.Object(v1, "segments", []Change{
			ins(0x200, 1, []schemas.Value{Txt("2"), Txt("two")}),
			upd(0x400, 1, []schemas.Value{Txt("3"), Txt("three'")}),
			ins(0x400, 2, []schemas.Value{Txt("4"), Txt("four")}),
		}),
		a.Object(v2, "segments", []Change{
			ins(0x300, 1, []schemas.Value{Txt("3"), Txt("three"), Txt("x")}),
			upd(0x300, 2, []schemas.Value{Txt("1"), Txt("one'"), Txt("y")}),
		}))
	// At 0/400 the table is back to v1's shape: the column was dropped.
	// (At 0/300 it had v2's; the plan picks the version of the newest
	// object, so a restore between the two DDL changes gets v1's shape: a
	// known limitation.)
	mustFold(t, a, Target{LSN: 0x400}, "app.t", "1|one'", "2|two", "3|three'", "4|four")
	mustFold(t, a, Target{Time: CommitAt(0x400)}, "app.t", "1|one'", "2|two", "3|three'", "4|four")
}

// A snapshot without rows of a table starts that table empty at the
// snapshot: changes at or before it in a segment that straddles the
// snapshot are already accounted for.
func TestFoldSegmentStraddlingSnapshot(t *testing.T) {
	orders := TableSchemaFor("app", "orders",
		schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true},
		schemas.Column{Name: "big", TypeOID: 25, TypeMod: -1, TypeName: "text"})
	row := func(id, big string) []schemas.Value { return []schemas.Value{Txt(id), Txt(big)} }
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(orders, 0x100, row("5", "B5"))}, orders)
	a.Segment([]*schemas.TableSchema{orders}, a.Object(orders, "segments", []Change{
		upd(0x200, 1, []schemas.Value{Txt("5"), Unchanged}),
		del(0x250, 1, []schemas.Value{Txt("5"), Null}),
		ins(0x400, 1, row("6", "B6")),
	}))
	// A synthesized snapshot at 0/300: the tenant has no orders then.
	a.Snapshot(0x300, nil, orders)
	mustFold(t, a, Target{LSN: 0x400}, "app.orders", "6|B6")
	// From the first snapshot, the update finds its row.
	mustFold(t, a, Target{LSN: 0x200}, "app.orders", "5|B5")
}

// Direct checks of the fold's bookkeeping.
func TestFoldDirect(t *testing.T) {
	f, err := newFold(foldTenant, foldItems, Target{LSN: 0x1000})
	if err != nil {
		t.Fatal(err)
	}
	m := f.mapperFor(foldItems)
	apply := func(c Change) error {
		_, err := f.applyChange(m, &change{Pos: schemas.Pos{LSN: c.LSN, Seq: c.Seq}, Op: c.Op, CommitTime: CommitAt(c.LSN), Values: c.Vals})
		return err
	}
	f.markSnapshotLoaded(0x100)
	// At or before the snapshot: skipped.
	if err := apply(ins(0x100, 5, item("1", "x", "y"))); err != nil || len(f.rows) != 0 || f.applied != 0 {
		t.Fatalf("change at the snapshot LSN was applied: %v", err)
	}
	// A key column that is an unchanged value is refused.
	if err := apply(upd(0x200, 1, []schemas.Value{Unchanged, Txt("acme"), Null, Null})); err == nil {
		t.Fatal("update with an unchanged key accepted")
	}
	// An update whose delete half was an orphan, with an unchanged value.
	if err := apply(del(0x300, 1, oldKey("8"))); err != nil {
		t.Fatal(err)
	}
	err = apply(upd(0x300, 1, []schemas.Value{Txt("9"), Txt("acme"), Txt("n"), Unchanged}))
	if err == nil || !strings.Contains(err.Error(), "no earlier version") {
		t.Fatalf("key change from an unknown row with an unchanged value: %v", err)
	}
	if f.orphans != 1 {
		t.Fatalf("orphans = %d", f.orphans)
	}
	// Unknown op.
	if err := apply(Change{LSN: 0x400, Seq: 1, Op: 'Z', Vals: item("1", "x", "y")}); err == nil {
		t.Fatal("unknown op accepted")
	}
	// A snapshot row must be an insert.
	if err := f.applySnapshotRow(m, &change{Op: schemas.OpUpdate, Values: item("1", "x", "y")}); err == nil {
		t.Fatal("snapshot row with op U accepted")
	}
}

// Snapshot rows no change touches are sent without being folded: a table
// dropped and created again (a new generation) still loses them, and of
// identical rows of a multiset only the touched copies change.
func TestFoldUntouchedSnapshotRows(t *testing.T) {
	gen := func(g uint32) *schemas.TableSchema {
		ts := TableSchemaFor("acme", "notes",
			schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true},
			schemas.Column{Name: "body", TypeOID: 25, TypeMod: -1, TypeName: "text"})
		ts.Generation = g
		ts.ComputeVersion()
		return ts
	}
	g1, g2 := gen(1), gen(2)
	row := func(id, body string) []schemas.Value { return []schemas.Value{Txt(id), Txt(body)} }
	a := NewArchiveBuilder(t, foldTenant)
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(g1, 0x100, row("1", "x"), row("2", "y"))}, g1)
	a.Segment([]*schemas.TableSchema{g1}, a.Object(g1, "segments", []Change{ins(0x200, 1, row("3", "z"))}))
	a.Segment([]*schemas.TableSchema{g2}, a.Object(g2, "segments", []Change{ins(0x300, 1, row("4", "new"))}))
	mustFold(t, a, Target{LSN: 0x200}, "acme.notes", "1|x", "2|y", "3|z")
	mustFold(t, a, Target{LSN: 0x300}, "acme.notes", "4|new")

	full := TableSchemaFor("acme", "log",
		schemas.Column{Name: "at", TypeOID: 23, TypeMod: -1, TypeName: "integer"},
		schemas.Column{Name: "msg", TypeOID: 25, TypeMod: -1, TypeName: "text"})
	b := NewArchiveBuilder(t, foldTenant)
	b.Snapshot(0x100, []schemas.ObjectRef{b.SnapshotObject(full, 0x100,
		row("1", "a"), row("1", "a"), row("1", "a"), row("2", "b"), row("2", "b"))}, full)
	b.Segment([]*schemas.TableSchema{full}, b.Object(full, "segments", []Change{
		del(0x200, 1, row("1", "a")),
		del(0x300, 1, row("2", "b")),
		upd(0x300, 1, row("2", "c")),
	}))
	mustFold(t, b, Target{LSN: 0x100}, "acme.log", "1|a", "1|a", "1|a", "2|b", "2|b")
	mustFold(t, b, Target{LSN: 0x300}, "acme.log", "1|a", "1|a", "2|b", "2|c")
}
