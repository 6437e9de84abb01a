package replayer_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// genTable is app.<name> (id, <tenantCol>, note) of table generation gen.
func genTable(name, tenantCol string, gen uint32) *schemas.TableSchema {
	ts := replayer.TableSchemaFor("app", name,
		schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true},
		schemas.Column{Name: tenantCol, TypeOID: 25, TypeMod: -1, TypeName: "text", NotNull: true},
		schemas.Column{Name: "note", TypeOID: 25, TypeMod: -1, TypeName: "text"})
	ts.TenantColumn, ts.Generation = tenantCol, gen
	ts.ComputeVersion()
	return ts
}

func marker(l schemas.LSN, seq uint32, op schemas.Op) replayer.Change {
	return replayer.Change{LSN: l, Seq: seq, Op: op, Vals: []schemas.Value{replayer.Null, replayer.Null, replayer.Null}}
}

func ins(l schemas.LSN, seq uint32, id int, note string) replayer.Change {
	return replayer.Change{LSN: l, Seq: seq, Op: schemas.OpInsert, Vals: vals([]string{fmt.Sprint(id), "acme", note})}
}

// restoredTables restores a at target into a fresh schema and returns
// every restored table's rows as "table: id|note ...".
func restoredTables(t *testing.T, a *applyArchive, target replayer.Target) []string {
	t.Helper()
	conn, ctx := connect(t, pgtest.NewDB(t))
	res, err := restore(t, ctx, a, conn, target, replayer.Options{Schema: "r"})
	if err != nil {
		t.Fatalf("restore at %s: %v", target, err)
	}
	var out []string
	for _, tr := range res.Tables {
		rows, _ := conn.Query(ctx, "SELECT concat_ws('|', id, note) FROM "+tr.Target+" ORDER BY id")
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s: %v", tr.Name, got))
	}
	return out
}

// TestApplyTableSwappedByRename restores around the common migration that
// builds a new table beside the old one and swaps it in (DROP TABLE items;
// ALTER TABLE new_items RENAME TO items, in one transaction at 0/300): the
// two generations' changes interleave by position, and only the one
// holding the name at the target is restored under it.
func TestApplyTableSwappedByRename(t *testing.T) {
	old, fresh, renamed := genTable("items", "tenant_id", 7), genTable("new_items", "tenant_id", 9), genTable("items", "tenant_id", 9)
	a := &applyArchive{ArchiveBuilder: replayer.NewArchiveBuilder(t, "acme")}
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(old, 0x100, vals([]string{"1", "acme", "old one"}))}, old)
	a.Segment([]*schemas.TableSchema{old, fresh, renamed},
		a.Object(fresh, "segments", []replayer.Change{ins(0x200, 1, 1, "new one")}),
		a.Object(old, "segments", []replayer.Change{ins(0x250, 1, 2, "old two"), marker(0x300, 1, schemas.OpDrop)}),
		a.Object(renamed, "segments", []replayer.Change{marker(0x300, 2, schemas.OpSchema), ins(0x400, 1, 3, "new three")}))
	for _, c := range []struct {
		target replayer.Target
		want   []string
	}{
		{replayer.Target{LSN: 0x250}, []string{"app.items: [1|old one 2|old two]", "app.new_items: [1|new one]"}},
		{replayer.Target{Time: replayer.CommitAt(0x250)}, []string{"app.items: [1|old one 2|old two]", "app.new_items: [1|new one]"}},
		{replayer.Target{LSN: 0x300}, []string{"app.items: [1|new one]"}},
		{replayer.Target{Time: replayer.CommitAt(0x350)}, []string{"app.items: [1|new one]"}},
		{replayer.Target{LSN: 0x400}, []string{"app.items: [1|new one 3|new three]"}},
	} {
		if got := restoredTables(t, a, c.target); !slices.Equal(got, c.want) {
			t.Errorf("at %s: restored %q, want %q", c.target, got, c.want)
		}
	}
}

// TestApplyTableRecreatedWithOtherTenantColumn restores a table dropped and
// created again with another tenant column: the old generation's rows,
// which the new one would read as another tenant's, are never folded.
func TestApplyTableRecreatedWithOtherTenantColumn(t *testing.T) {
	v7, v8 := genTable("items", "tenant_id", 7), genTable("items", "org", 8)
	a := &applyArchive{ArchiveBuilder: replayer.NewArchiveBuilder(t, "acme")}
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(v7, 0x100, vals([]string{"1", "acme", "old"}))}, v7)
	a.Segment([]*schemas.TableSchema{v7, v8},
		a.Object(v7, "segments", []replayer.Change{marker(0x200, 1, schemas.OpDrop)}),
		a.Object(v8, "segments", []replayer.Change{ins(0x300, 1, 5, "new")}))
	for _, c := range []struct {
		target replayer.Target
		want   []string
	}{
		{replayer.Target{LSN: 0x150}, []string{"app.items: [1|old]"}},
		{replayer.Target{LSN: 0x300}, []string{"app.items: [5|new]"}},
		{replayer.Target{Time: replayer.CommitAt(0x300)}, []string{"app.items: [5|new]"}},
	} {
		if got := restoredTables(t, a, c.target); !slices.Equal(got, c.want) {
			t.Errorf("at %s: restored %q, want %q", c.target, got, c.want)
		}
	}
}

// TestApplyStaleDropOfOldGeneration: an older capture archived a DROP
// TABLE's marker at the end of its transaction, after the rows of the table
// created again under the name. Where the plan keeps both generations (a
// time target over objects without their first commit time), that drop of
// the old generation drops nothing of the new one.
func TestApplyStaleDropOfOldGeneration(t *testing.T) {
	v7, v9 := genTable("items", "tenant_id", 7), genTable("items", "tenant_id", 9)
	a := &applyArchive{ArchiveBuilder: replayer.NewArchiveBuilder(t, "acme")}
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(v7, 0x100, vals([]string{"1", "acme", "old"}))}, v7)
	noTime := func(r schemas.ObjectRef) schemas.ObjectRef { r.MinTime = time.Time{}; return r }
	a.Segment([]*schemas.TableSchema{v7, v9},
		noTime(a.Object(v9, "segments", []replayer.Change{ins(0x200, 1, 5, "new")})),
		noTime(a.Object(v7, "segments", []replayer.Change{marker(0x200, 2, schemas.OpDrop)})))
	want := []string{"app.items: [5|new]"}
	if got := restoredTables(t, a, replayer.Target{Time: replayer.CommitAt(0x200)}); !slices.Equal(got, want) {
		t.Errorf("restored %q, want %q", got, want)
	}
}
