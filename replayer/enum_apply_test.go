package replayer_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// Archives of app.feel (and app.other) with the enum app.mood, whose label
// 'sad' is renamed to 'unhappy' between versions v1 and v2 (the same label
// OIDs), and a domain app.dmood over it.

var moodOIDs = []uint32{901, 902, 903}

// moodTypes are the types of a version: the enum called name with labels
// (OIDs oids), and app.dmood over it.
func moodTypes(name string, oids []uint32, labels ...string) []schemas.TypeDef {
	return []schemas.TypeDef{
		{Name: "app.dmood", Kind: 'd', BaseType: name},
		{Name: name, Kind: 'e', Labels: labels, LabelOIDs: oids},
	}
}

// feelTable is table with columns id, tenant_id, m (mood), ms (mood[]) and
// d (app.dmood), plus extra columns, using types (the enum first named
// mood).
func feelTable(table, mood string, types []schemas.TypeDef, extra ...schemas.Column) *schemas.TableSchema {
	cols := []schemas.Column{
		{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true},
		{Name: "tenant_id", TypeOID: 25, TypeMod: -1, TypeName: "text", NotNull: true},
		{Name: "m", TypeOID: 16400, TypeMod: -1, TypeName: mood},
		{Name: "ms", TypeOID: 16401, TypeMod: -1, TypeName: mood + "[]"},
		{Name: "d", TypeOID: 16402, TypeMod: -1, TypeName: "app.dmood"},
	}
	ts := replayer.TableSchemaFor("app", table, append(cols, extra...)...)
	ts.TenantColumn = "tenant_id"
	ts.Types = types
	ts.ComputeVersion()
	return ts
}

// moodArchive: a snapshot at 0/100 of v1 (rows 1, 2), a v1 segment at
// 0/200 (insert 3), a v2 segment at 0/300 (update 1, insert 4). v1 and v2
// are feelTable with types v1 and v2.
func moodArchive(t *testing.T, v1, v2 *schemas.TableSchema) *applyArchive {
	a := replayer.NewArchiveBuilder(t, "acme")
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(v1, 0x100,
		vals([]string{"1", "acme", "sad", "{sad,ok}", "sad"}),
		vals([]string{"2", "acme", "ok", "{{sad,NULL},{happy,sad}}", "∅"}))}, v1)
	a.Segment([]*schemas.TableSchema{v1}, a.Object(v1, "segments", []replayer.Change{
		{LSN: 0x200, Seq: 1, Op: schemas.OpInsert, Vals: vals([]string{"3", "acme", "sad", `[0:0]={"sad"}`, "happy"})},
	}))
	a.Segment([]*schemas.TableSchema{v2}, a.Object(v2, "segments", []replayer.Change{
		{LSN: 0x300, Seq: 1, Op: schemas.OpUpdate, Vals: vals([]string{"1", "acme", "unhappy", "{unhappy}", "unhappy"})},
		{LSN: 0x300, Seq: 2, Op: schemas.OpInsert, Vals: vals([]string{"4", "acme", "unhappy", "{unhappy,ok}", "unhappy"})},
	}))
	return &applyArchive{ArchiveBuilder: a}
}

var (
	feelBefore = []string{"1|sad|{sad,ok}|sad", "2|ok|{{sad,NULL},{happy,sad}}", "3|sad|[0:0]={sad}|happy"}
	feelAfter  = []string{"1|unhappy|{unhappy}|unhappy", "2|ok|{{unhappy,NULL},{happy,unhappy}}", "3|unhappy|[0:0]={unhappy}|happy",
		"4|unhappy|{unhappy,ok}|unhappy"}
)

// feelRows returns the rows of the restored table as "id|m|ms|d" (NULLs left out).
func feelRows(t *testing.T, ctx context.Context, conn *pgx.Conn, schema, table string) []string {
	t.Helper()
	rows, _ := conn.Query(ctx, "SELECT concat_ws('|', id, m, ms, d) FROM "+pgx.Identifier{schema, table}.Sanitize()+" ORDER BY id")
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func restoreFeel(t *testing.T, ctx context.Context, a *applyArchive, conn *pgx.Conn, lsn schemas.LSN, schema string, want []string) {
	t.Helper()
	if _, err := restore(t, ctx, a, conn, replayer.Target{LSN: lsn}, replayer.Options{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	if got := feelRows(t, ctx, conn, schema, "feel"); !slices.Equal(got, want) {
		t.Errorf("restored at %s:\n got %q\nwant %q", schema, got, want)
	}
}

func moodLabels(t *testing.T, ctx context.Context, conn *pgx.Conn, name string) string {
	t.Helper()
	return queryOne[string](t, ctx, conn, "SELECT enum_range(NULL::"+name+")::text")
}

// TestApplyEnumLabelRenamed restores before and after a label rename, in
// that order into one database (the type the first restore created is
// renamed as the source's was, not given a second label), to the first
// point again (the copy gets the old label back beside the new one), and
// after the rename into a fresh database.
func TestApplyEnumLabelRenamed(t *testing.T) {
	v1 := feelTable("feel", "app.mood", moodTypes("app.mood", moodOIDs, "sad", "ok", "happy"))
	v2 := feelTable("feel", "app.mood", moodTypes("app.mood", moodOIDs, "unhappy", "ok", "happy"))
	a := moodArchive(t, v1, v2)
	conn, ctx := connect(t, pgtest.NewDB(t))

	restoreFeel(t, ctx, a, conn, 0x200, "before", feelBefore)
	restoreFeel(t, ctx, a, conn, 0x300, "after", feelAfter)
	if got := moodLabels(t, ctx, conn, "app.mood"); got != "{unhappy,ok,happy}" {
		t.Errorf("labels after the second restore %s, want {unhappy,ok,happy}", got)
	}
	restoreFeel(t, ctx, a, conn, 0x200, "before again", feelBefore)
	if got := moodLabels(t, ctx, conn, "app.mood"); got != "{sad,unhappy,ok,happy}" {
		t.Errorf("labels after the third restore %s", got)
	}

	conn, ctx = connect(t, pgtest.NewDB(t))
	restoreFeel(t, ctx, a, conn, 0x300, "fresh", feelAfter)
	if got := moodLabels(t, ctx, conn, "app.mood"); got != "{unhappy,ok,happy}" {
		t.Errorf("labels in a fresh database %s", got)
	}
}

// TestApplyEnumTypeRenamed restores across ALTER TYPE … RENAME and RENAME
// VALUE: the versions' enums have different names and are matched by
// their label OIDs.
func TestApplyEnumTypeRenamed(t *testing.T) {
	v1 := feelTable("feel", "app.mood", moodTypes("app.mood", moodOIDs, "sad", "ok", "happy"))
	v2 := feelTable("feel", "app.feeling", moodTypes("app.feeling", moodOIDs, "unhappy", "ok", "happy"))
	a := moodArchive(t, v1, v2)
	conn, ctx := connect(t, pgtest.NewDB(t))
	restoreFeel(t, ctx, a, conn, 0x300, "after", feelAfter)
	if got := moodLabels(t, ctx, conn, "app.feeling"); got != "{unhappy,ok,happy}" {
		t.Errorf("labels %s", got)
	}
}

// TestApplyEnumRenamedOtherTableStale restores two tables using the enum:
// app.other's newest version knows the rename, app.feel's does not (none
// of its rows used the label since). Both are restored with the new label.
func TestApplyEnumRenamedOtherTableStale(t *testing.T) {
	v1 := feelTable("feel", "app.mood", moodTypes("app.mood", moodOIDs, "sad", "ok", "happy"))
	o1 := feelTable("other", "app.mood", moodTypes("app.mood", moodOIDs, "sad", "ok", "happy"))
	o2 := feelTable("other", "app.mood", moodTypes("app.mood", moodOIDs, "unhappy", "ok", "happy"))
	a := replayer.NewArchiveBuilder(t, "acme")
	a.Snapshot(0x100, []schemas.ObjectRef{
		a.SnapshotObject(v1, 0x100, vals([]string{"1", "acme", "sad", "{sad,ok}", "sad"})),
		a.SnapshotObject(o1, 0x100, vals([]string{"1", "acme", "sad", "{sad}", "∅"})),
	}, v1, o1)
	a.Segment([]*schemas.TableSchema{o2}, a.Object(o2, "segments", []replayer.Change{
		{LSN: 0x300, Seq: 1, Op: schemas.OpInsert, Vals: vals([]string{"2", "acme", "unhappy", "{unhappy,ok}", "unhappy"})},
	}))
	conn, ctx := connect(t, pgtest.NewDB(t))
	aa := &applyArchive{ArchiveBuilder: a}
	restoreFeel(t, ctx, aa, conn, 0x300, "after", []string{"1|unhappy|{unhappy,ok}|unhappy"})
	if got := feelRows(t, ctx, conn, "after", "other"); !slices.Equal(got, []string{"1|unhappy|{unhappy}", "2|unhappy|{unhappy,ok}|unhappy"}) {
		t.Errorf("app.other restored %q", got)
	}
}

// TestApplyEnumRenamedIntoSourceType restores into a database whose enum
// is the source's own (the archive's label OIDs are its labels' OIDs), as
// a restore into the source database does: rows from before the rename get
// the type's current label, and the renamed-away label is never added.
func TestApplyEnumRenamedIntoSourceType(t *testing.T) {
	conn, ctx := connect(t, pgtest.NewDB(t))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA app; CREATE TYPE app.mood AS ENUM ('unhappy', 'ok', 'happy'); CREATE DOMAIN app.dmood AS app.mood`); err != nil {
		t.Fatal(err)
	}
	rows, _ := conn.Query(ctx, "SELECT oid FROM pg_enum WHERE enumtypid = 'app.mood'::regtype ORDER BY enumsortorder")
	oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		t.Fatal(err)
	}
	v1 := feelTable("feel", "app.mood", moodTypes("app.mood", oids, "sad", "ok", "happy"))
	v2 := feelTable("feel", "app.mood", moodTypes("app.mood", oids, "unhappy", "ok", "happy"))
	a := moodArchive(t, v1, v2)
	restoreFeel(t, ctx, a, conn, 0x200, "before", []string{"1|unhappy|{unhappy,ok}|unhappy", "2|ok|{{unhappy,NULL},{happy,unhappy}}", "3|unhappy|[0:0]={unhappy}|happy"})
	restoreFeel(t, ctx, a, conn, 0x300, "after", feelAfter)
	if got := moodLabels(t, ctx, conn, "app.mood"); got != "{unhappy,ok,happy}" {
		t.Errorf("labels of the source's type %s, want {unhappy,ok,happy}", got)
	}
}

// TestApplyEnumRenamedInsideComposite refuses to restore rows of a
// composite column across a rename of an enum it may hold, naming the
// column and the labels.
func TestApplyEnumRenamedInsideComposite(t *testing.T) {
	pair := schemas.Column{Name: "p", TypeOID: 16410, TypeMod: -1, TypeName: "app.pair"}
	types := func(labels ...string) []schemas.TypeDef {
		return append(moodTypes("app.mood", moodOIDs, labels...), schemas.TypeDef{Name: "app.pair", Kind: 'c'})
	}
	v1 := feelTable("feel", "app.mood", types("sad", "ok", "happy"), pair)
	v2 := feelTable("feel", "app.mood", types("unhappy", "ok", "happy"), pair)
	a := replayer.NewArchiveBuilder(t, "acme")
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(v1, 0x100, vals([]string{"1", "acme", "sad", "{sad}", "sad", "(sad,1)"}))}, v1)
	a.Segment([]*schemas.TableSchema{v2}, a.Object(v2, "segments", []replayer.Change{
		{LSN: 0x300, Seq: 1, Op: schemas.OpInsert, Vals: vals([]string{"2", "acme", "ok", "∅", "∅", "(unhappy,2)"})},
	}))
	conn, ctx := connect(t, pgtest.NewDB(t))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA app; CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy'); CREATE TYPE app.pair AS (m app.mood, n int)`); err != nil {
		t.Fatal(err)
	}
	aa := &applyArchive{ArchiveBuilder: a}
	_, err := restore(t, ctx, aa, conn, replayer.Target{LSN: 0x300}, replayer.Options{Schema: "after"})
	if err == nil || !strings.Contains(err.Error(), `column "p"`) || !strings.Contains(err.Error(), `"sad" to "unhappy"`) {
		t.Fatalf("restore across the rename: %v, want an error naming column p and the rename", err)
	}
	// Before the rename there is nothing to translate.
	if _, err := restore(t, ctx, aa, conn, replayer.Target{LSN: 0x100}, replayer.Options{Schema: "before"}); err != nil {
		t.Fatal(err)
	}
}

// TestApplyEnumOldArchiveNeverAddsRenamedLabel restores an archive without
// label OIDs into a database whose type has a label the archive does not
// list (renamed since, as in the source's own type): no label is added,
// and a row holding the old label fails to load instead.
func TestApplyEnumOldArchiveNeverAddsRenamedLabel(t *testing.T) {
	v1 := feelTable("feel", "app.mood", moodTypes("app.mood", nil, "sad", "ok", "happy"))
	v2 := feelTable("feel", "app.mood", moodTypes("app.mood", nil, "unhappy", "ok", "happy"))
	a := moodArchive(t, v1, v2)
	conn, ctx := connect(t, pgtest.NewDB(t))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA app; CREATE TYPE app.mood AS ENUM ('unhappy', 'ok', 'happy'); CREATE DOMAIN app.dmood AS app.mood`); err != nil {
		t.Fatal(err)
	}
	_, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x200}, replayer.Options{Schema: "before"})
	if err == nil || !strings.Contains(err.Error(), `"sad"`) {
		t.Errorf("restore: %v, want a failure on the label sad", err)
	}
	if got := moodLabels(t, ctx, conn, "app.mood"); got != "{unhappy,ok,happy}" {
		t.Errorf("labels %s, want {unhappy,ok,happy}", got)
	}
	// Labels only added since are added, in order.
	conn, ctx = connect(t, pgtest.NewDB(t))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA app; CREATE TYPE app.mood AS ENUM ('ok'); CREATE DOMAIN app.dmood AS app.mood`); err != nil {
		t.Fatal(err)
	}
	restoreFeel(t, ctx, a, conn, 0x200, "before", feelBefore)
	if got := moodLabels(t, ctx, conn, "app.mood"); got != "{sad,ok,happy}" {
		t.Errorf("labels %s, want {sad,ok,happy}", got)
	}
}
