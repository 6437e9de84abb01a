package replayer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// applyItems is a source table app.items with an enum of a schema the
// restore database lacks, an array, jsonb, numeric, bytea, timestamptz and
// a serial key.
func applyItems() *schemas.TableSchema {
	ts := replayer.TableSchemaFor("app", "items",
		schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true,
			Default: "nextval('app.items_id_seq'::regclass)"},
		schemas.Column{Name: "tenant_id", TypeOID: 25, TypeMod: -1, TypeName: "text", NotNull: true},
		schemas.Column{Name: "mood", TypeOID: 16390, TypeMod: -1, TypeName: "app.mood"},
		schemas.Column{Name: "tags", TypeOID: 1009, TypeMod: -1, TypeName: "text[]"},
		schemas.Column{Name: "doc", TypeOID: 3802, TypeMod: -1, TypeName: "jsonb"},
		schemas.Column{Name: "amount", TypeOID: 1700, TypeMod: 12<<16 | 3 + 4, TypeName: "numeric(12,3)"},
		schemas.Column{Name: "blob", TypeOID: 17, TypeMod: -1, TypeName: "bytea"},
		schemas.Column{Name: "at", TypeOID: 1184, TypeMod: -1, TypeName: "timestamp with time zone"},
	)
	ts.TenantColumn = "tenant_id"
	ts.Types = []schemas.TypeDef{{Name: "app.mood", Kind: 'e', Labels: []string{"sad", "ok", "happy"}}}
	ts.ComputeVersion()
	return ts
}

// Rows in PostgreSQL's text output (UTC, hex bytea), "∅" for NULL.
var (
	row1  = []string{"1", "acme", "happy", `{a,"b c",NULL}`, `{"a": 1, "b": [true, null]}`, "12.500", `\x00ff10`, "2026-03-01 10:00:00+00"}
	row1b = []string{"1", "acme", "sad", `{a,"b c",NULL}`, `{"a": 1, "b": [true, null]}`, "12.500", `\x00ff10`, "2026-03-01 10:00:00+00"}
	row2  = []string{"2", "acme", "sad", "{}", "{}", "-0.001", `\x`, "2026-03-01 10:00:00.123456+00"}
	row3  = []string{"3", "acme", "∅", `{"x\\y","q\"z","tab	in"}`, `{"t": "a\tb\n", "u": "ü"}`, "∅", "∅", "∅"}
	row4  = []string{"4", "acme", "ok", "{d}", "[1, 2]", "0.000", `\xdeadbeef`, "1999-12-31 23:59:59.999999+00"}
	row10 = []string{"10", "acme", "ok", `{"x\\y","q\"z","tab	in"}`, `{"moved": true}`, "∅", "∅", "∅"}
	row11 = []string{"11", "acme", "happy", "∅", "null", "0.001", `\x0a0d09`, "2026-03-01 12:00:00+00"}
)

func vals(row []string) []schemas.Value {
	out := make([]schemas.Value, len(row))
	for i, s := range row {
		out[i] = replayer.Txt(s)
		if s == "∅" {
			out[i] = replayer.Null
		}
	}
	return out
}

func with(row []string, i int, v schemas.Value) []schemas.Value {
	out := vals(row)
	out[i] = v
	return out
}

func keyOnly(id string) []schemas.Value {
	out := make([]schemas.Value, 8)
	for i := range out {
		out[i] = replayer.Null
	}
	out[0] = replayer.Txt(id)
	return out
}

type applyArchive struct {
	*replayer.ArchiveBuilder
	seg2 schemas.ObjectRef
}

// buildApplyArchive: a snapshot at 0/100 (rows 1, 2, 3), a segment
// 0/200..0/300 (insert 4, update 1 with doc unchanged, delete 2), a
// segment 0/400..0/500 (key change 3 -> 10 with tags unchanged, insert 11).
func buildApplyArchive(t *testing.T) *applyArchive {
	ts := applyItems()
	tables := []*schemas.TableSchema{ts}
	a := replayer.NewArchiveBuilder(t, "acme")
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(ts, 0x100, vals(row1), vals(row2), vals(row3))}, ts)
	a.Segment(tables, a.Object(ts, "segments", []replayer.Change{
		{LSN: 0x200, Seq: 1, Op: schemas.OpInsert, Vals: vals(row4)},
		{LSN: 0x300, Seq: 1, Op: schemas.OpUpdate, Vals: with(row1b, 4, replayer.Unchanged)},
		{LSN: 0x300, Seq: 2, Op: schemas.OpDelete, Vals: keyOnly("2")},
	}))
	seg2 := a.Object(ts, "segments", []replayer.Change{
		{LSN: 0x400, Seq: 1, Op: schemas.OpDelete, Vals: keyOnly("3")},
		{LSN: 0x400, Seq: 1, Op: schemas.OpUpdate, Vals: with(row10, 3, replayer.Unchanged)},
		{LSN: 0x500, Seq: 1, Op: schemas.OpInsert, Vals: vals(row11)},
	})
	a.Segment(tables, seg2)
	return &applyArchive{a, seg2}
}

func connect(t *testing.T, dsn string) (*pgx.Conn, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(ctx)) })
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	return conn, ctx
}

func restore(t *testing.T, ctx context.Context, a *applyArchive, conn *pgx.Conn, target replayer.Target, opts replayer.Options) (*replayer.Result, error) {
	t.Helper()
	plan, err := replayer.PlanRestore(a.Load(), target)
	if err != nil {
		t.Fatal(err)
	}
	return replayer.Apply(ctx, a.Store, conn, plan, opts)
}

// rowsOf returns table's rows as the text of each column, by id.
func rowsOf(t *testing.T, ctx context.Context, conn *pgx.Conn, table string) [][]string {
	t.Helper()
	cols := []string{"id", "tenant_id", "mood", "tags", "doc", "amount", "blob", "at"}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = c + "::text"
	}
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+table+" AS t ORDER BY t.id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vs := make([]*string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vs {
			ptrs[i] = &vs[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		r := make([]string, len(cols))
		for i, v := range vs {
			r[i] = "∅"
			if v != nil {
				r[i] = *v
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkRows(t *testing.T, got [][]string, want ...[]string) {
	t.Helper()
	if !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Fatalf("restored rows:\n got %q\nwant %q", got, want)
	}
}

func queryOne[T any](t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestApply(t *testing.T) {
	a := buildApplyArchive(t)
	conn, ctx := connect(t, pgtest.NewDB(t))
	if queryOne[bool](t, ctx, conn, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'app')") {
		t.Fatal("the restore database must not have the source's schema")
	}

	res, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x500}, replayer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const schema = "tw_acme_lsn_0_500"
	if res.Schema != schema || !slices.Equal(res.Types, []string{"app.mood"}) || len(res.Tables) != 1 {
		t.Fatalf("result %+v", res)
	}
	if tr := res.Tables[0]; tr.Name != "app.items" || tr.Target != `"tw_acme_lsn_0_500"."items"` || tr.Rows != 4 {
		t.Fatalf("table result %+v", tr)
	}
	table := tr(schema)
	checkRows(t, rowsOf(t, ctx, conn, table), row1b, row4, row10, row11)

	// The enum was created under its archived name with its labels in order.
	if got := queryOne[string](t, ctx, conn, "SELECT enum_range(NULL::app.mood)::text"); got != "{sad,ok,happy}" {
		t.Errorf("enum labels %s", got)
	}
	if got := queryOne[string](t, ctx, conn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'amount'", table); got != "numeric(12,3)" {
		t.Errorf("amount column type %s", got)
	}
	// The primary key.
	pk := queryOne[string](t, ctx, conn, `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'`, table)
	if pk != "PRIMARY KEY (id)" {
		t.Errorf("primary key %q", pk)
	}
	// The sequence goes on past the restored ids.
	if id := queryOne[int](t, ctx, conn, "INSERT INTO "+table+" (tenant_id) VALUES ('acme') RETURNING id"); id <= 11 {
		t.Errorf("next id %d, want > 11", id)
	}
	if seq := queryOne[string](t, ctx, conn, "SELECT pg_get_serial_sequence($1, 'id')", table); !strings.HasPrefix(seq, schema+".") {
		t.Errorf("sequence %q is not owned by the restored column", seq)
	}

	// A second restore into the same database, to another point and schema:
	// the type exists already and is kept.
	res2, err := restore(t, ctx, a, conn, replayer.Target{Time: replayer.CommitAt(0x300)}, replayer.Options{Schema: "at 0x300"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Types) != 0 || res2.Tables[0].Rows != 3 {
		t.Fatalf("second restore %+v", res2)
	}
	checkRows(t, rowsOf(t, ctx, conn, tr("at 0x300")), row1b, row3, row4)
	if n := queryOne[int](t, ctx, conn, "SELECT nextval(pg_get_serial_sequence($1, 'id'))", tr("at 0x300")); n <= 4 {
		t.Errorf("nextval %d, want > 4", n)
	}
	// The snapshot point itself.
	if _, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x100}, replayer.Options{}); err != nil {
		t.Fatal(err)
	}
	checkRows(t, rowsOf(t, ctx, conn, tr("tw_acme_lsn_0_100")), row1, row2, row3)
}

func tr(schema string) string { return pgx.Identifier{schema, "items"}.Sanitize() }

// snapshotOfDB lists the database's schemas, relations and types, to check
// a failed restore left nothing behind.
func snapshotOfDB(t *testing.T, ctx context.Context, conn *pgx.Conn) string {
	t.Helper()
	return queryOne[string](t, ctx, conn, `SELECT concat_ws(' / ',
		(SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace),
		(SELECT string_agg(oid::regclass::text, ',' ORDER BY oid) FROM pg_class WHERE relnamespace <> 'pg_catalog'::regnamespace AND relnamespace <> 'information_schema'::regnamespace AND relnamespace <> 'pg_toast'::regnamespace),
		(SELECT string_agg(oid::regtype::text, ',' ORDER BY oid) FROM pg_type WHERE typnamespace <> 'pg_catalog'::regnamespace AND typnamespace <> 'information_schema'::regnamespace))`)
}

func TestApplyIntoExistingSchema(t *testing.T) {
	a := buildApplyArchive(t)
	conn, ctx := connect(t, pgtest.NewDB(t))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA "taken"`); err != nil {
		t.Fatal(err)
	}
	before := snapshotOfDB(t, ctx, conn)
	_, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x500}, replayer.Options{Schema: "taken"})
	if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--schema") {
		t.Fatalf("restore into an existing schema: %v", err)
	}
	if after := snapshotOfDB(t, ctx, conn); after != before {
		t.Fatalf("a failed restore left objects behind:\nbefore %s\nafter  %s", before, after)
	}
	// The default name, taken by a previous restore.
	if _, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x500}, replayer.Options{}); err != nil {
		t.Fatal(err)
	}
	before = snapshotOfDB(t, ctx, conn)
	_, err = restore(t, ctx, a, conn, replayer.Target{LSN: 0x500}, replayer.Options{})
	if err == nil || !strings.Contains(err.Error(), "tw_acme_lsn_0_500") || !strings.Contains(err.Error(), "--schema") {
		t.Fatalf("second restore to the same default schema: %v", err)
	}
	if after := snapshotOfDB(t, ctx, conn); after != before {
		t.Fatalf("a failed restore changed the database:\nbefore %s\nafter  %s", before, after)
	}
}

func TestApplyCorruptObject(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string) error
	}{
		{"flipped byte", func(path string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x01
			return os.WriteFile(path, b, 0o644)
		}},
		{"truncated", func(path string) error {
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			return os.Truncate(path, fi.Size()-7)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := buildApplyArchive(t)
			if err := tc.damage(filepath.Join(a.Store.Dir(), filepath.FromSlash(a.seg2.Key))); err != nil {
				t.Fatal(err)
			}
			conn, ctx := connect(t, pgtest.NewDB(t))
			before := snapshotOfDB(t, ctx, conn)
			_, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x500}, replayer.Options{Parallel: 1})
			if !errors.Is(err, replayer.ErrCorrupt) {
				t.Fatalf("restore from a damaged object: %v, want ErrCorrupt", err)
			}
			if testing.Verbose() {
				t.Logf("error: %v", err)
			}
			for _, w := range []string{a.seg2.Key, a.seg2.SHA256, "app.items"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if after := snapshotOfDB(t, ctx, conn); after != before {
				t.Fatalf("a failed restore left objects behind:\nbefore %s\nafter  %s", before, after)
			}
			// A target before the damaged object still restores.
			if _, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x300}, replayer.Options{}); err != nil {
				t.Fatalf("restore before the damaged object: %v", err)
			}
		})
	}
}

func TestApplyRefusesForeignObject(t *testing.T) {
	a := buildApplyArchive(t)
	conn, ctx := connect(t, pgtest.NewDB(t))
	plan, err := replayer.PlanRestore(a.Load(), replayer.Target{LSN: 0x500})
	if err != nil {
		t.Fatal(err)
	}
	foreign := strings.Replace(plan.Tables[0].Objects[1].Key, schemas.TenantPrefix("acme"), schemas.TenantPrefix("acme2"), 1)
	plan.Tables[0].Objects[1].Key = foreign
	before := snapshotOfDB(t, ctx, conn)
	_, err = replayer.Apply(ctx, a.Store, conn, plan, replayer.Options{})
	if err == nil || !strings.Contains(err.Error(), foreign) || !strings.Contains(err.Error(), "outside tenant") {
		t.Fatalf("restore of a plan naming another tenant's object: %v", err)
	}
	if after := snapshotOfDB(t, ctx, conn); after != before {
		t.Fatalf("a refused restore changed the database:\nbefore %s\nafter  %s", before, after)
	}
}
