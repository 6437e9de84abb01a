package replayer_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// notesArchive is a snapshot at 0/100 of app.notes (id int primary key,
// v text, w int) with rows (1, 'a', 7) and (2, 'b', 99); mod adds to its
// schema.
func notesArchive(t *testing.T, mod func(*schemas.TableSchema)) *applyArchive {
	t.Helper()
	ts := replayer.TableSchemaFor("app", "notes",
		schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true, NotNull: true, Num: 1},
		schemas.Column{Name: "v", TypeOID: 25, TypeMod: -1, TypeName: "text", Num: 2},
		schemas.Column{Name: "w", TypeOID: 23, TypeMod: -1, TypeName: "integer", Num: 3},
	)
	mod(ts)
	ts.ComputeVersion()
	a := replayer.NewArchiveBuilder(t, "acme")
	a.Snapshot(0x100, []schemas.ObjectRef{a.SnapshotObject(ts, 0x100,
		[]schemas.Value{replayer.Txt("1"), replayer.Txt("a"), replayer.Txt("7")},
		[]schemas.Value{replayer.Txt("2"), replayer.Txt("b"), replayer.Txt("99")})}, ts)
	return &applyArchive{ArchiveBuilder: a}
}

// notesDefs lists the restored table's indexes, constraints and defaults.
const notesDefs = `SELECT coalesce(string_agg(d, '; ' ORDER BY d), '') FROM (
	SELECT substring(pg_get_indexdef(indexrelid) from ' USING .*$') AS d FROM pg_index WHERE indrelid = $1::regclass AND NOT indisprimary
	UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass AND contype <> 'p'
	UNION ALL SELECT 'default ' || pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = $1::regclass) x`

// TestApplyOlderArchiveIndexes restores a table version as archives
// before index definitions were recorded hold it (plain-column indexes by
// their columns only) and one with a default: the indexes are created by
// their columns, the default is set.
func TestApplyOlderArchiveIndexes(t *testing.T) {
	a := notesArchive(t, func(ts *schemas.TableSchema) {
		ts.Indexes = []schemas.IndexDef{{Unique: true, Method: "btree", Columns: []string{"v"}}, {Method: "hash", Columns: []string{"w"}}}
		ts.Columns[2].Default = "7"
	})
	conn, ctx := connect(t, pgtest.NewDB(t))
	res, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x100}, replayer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := queryOne[string](t, ctx, conn, notesDefs, res.Tables[0].Target)
	if want := " USING btree (v);  USING hash (w); default 7"; got != want {
		t.Errorf("restored definitions %q, want %q", got, want)
	}
}

// TestApplySkipsUnsatisfiedForeignKey restores a foreign key the archived
// rows do not satisfy (in a pool table, a key to another tenant's row):
// the rows are restored, the key is not, and the log says so.
func TestApplySkipsUnsatisfiedForeignKey(t *testing.T) {
	a := notesArchive(t, func(ts *schemas.TableSchema) {
		ts.Constraints = []schemas.ConstraintDef{{Name: "w_note", Type: "f", Def: "FOREIGN KEY (w) REFERENCES app.notes(id)",
			Columns: []string{"w"}, RefSchema: "app", RefTable: "notes", RefColumns: []string{"id"}},
			{Name: "v_set", Type: "c", Def: "CHECK ((v IS NOT NULL))"}}
	})
	conn, ctx := connect(t, pgtest.NewDB(t))
	var logs bytes.Buffer
	res, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x100}, replayer.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tables[0].Rows != 2 {
		t.Errorf("restored %d rows, want 2", res.Tables[0].Rows)
	}
	if got, want := queryOne[string](t, ctx, conn, notesDefs, res.Tables[0].Target), "v_set CHECK ((v IS NOT NULL))"; got != want {
		t.Errorf("restored definitions %q, want %q", got, want)
	}
	if !slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(l string) bool {
		return strings.Contains(l, "not recreated") && strings.Contains(l, "w_note") && strings.Contains(l, "violates foreign key")
	}) {
		t.Errorf("no log line says the foreign key was not recreated:\n%s", logs.String())
	}
}

// TestApplyRefusesDefinitionsOfAnotherKind makes archived definitions
// that are not what their kind prints (a tampered or foreign archive):
// each restore fails, naming the definition, and leaves nothing behind.
func TestApplyRefusesDefinitionsOfAnotherKind(t *testing.T) {
	fk := schemas.ConstraintDef{Name: "w_note", Type: "f", Columns: []string{"w"}, RefSchema: "app", RefTable: "notes", RefColumns: []string{"id"}}
	cases := map[string]func(*schemas.TableSchema){
		"check that is not a CHECK": func(ts *schemas.TableSchema) {
			ts.Constraints = []schemas.ConstraintDef{{Name: "c", Type: "c", Def: "UNIQUE (v)"}}
		},
		"a second statement": func(ts *schemas.TableSchema) {
			ts.Constraints = []schemas.ConstraintDef{{Name: "c", Type: "c", Def: "CHECK (true); DROP TABLE app.notes"}}
		},
		"unknown constraint type": func(ts *schemas.TableSchema) {
			ts.Constraints = []schemas.ConstraintDef{{Name: "c", Type: "t", Def: "CONSTRAINT TRIGGER"}}
		},
		"foreign key actions with another subcommand": func(ts *schemas.TableSchema) {
			k := fk
			k.Actions = " ON DELETE CASCADE, DROP COLUMN v"
			ts.Constraints = []schemas.ConstraintDef{k}
		},
		"index definition without a key list": func(ts *schemas.TableSchema) {
			ts.Indexes = []schemas.IndexDef{{Method: "btree", Name: "i", Def: "v"}}
		},
	}
	conn, ctx := connect(t, pgtest.NewDB(t))
	before := snapshotOfDB(t, ctx, conn)
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			a := notesArchive(t, mod)
			if _, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x100}, replayer.Options{}); err == nil {
				t.Fatal("restore succeeded")
			} else {
				t.Log(err)
			}
			if after := snapshotOfDB(t, ctx, conn); after != before {
				t.Errorf("the failed restore left objects behind:\n%s\nbefore:\n%s", after, before)
			}
		})
	}
}

// TestApplyDefaultDrawsFromSequenceCopy restores a default that draws from
// a sequence of the source into the source's database: it draws from a
// copy in the restored schema that continues after the source's last
// value, and the source sequence can still be dropped (nothing restored
// depends on it).
func TestApplyDefaultDrawsFromSequenceCopy(t *testing.T) {
	a := notesArchive(t, func(ts *schemas.TableSchema) {
		ts.Columns[1].Default = `('N-'::text || nextval('app."Counter"'::regclass))`
	})
	conn, ctx := connect(t, pgtest.NewDB(t))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA app; CREATE SEQUENCE app."Counter"; SELECT setval('app."Counter"', 41)`); err != nil {
		t.Fatal(err)
	}
	res, err := restore(t, ctx, a, conn, replayer.Target{LSN: 0x100}, replayer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	target := res.Tables[0].Target
	if got := queryOne[string](t, ctx, conn, "INSERT INTO "+target+" (id) VALUES (3) RETURNING v"); got != "N-42" {
		t.Errorf("inserted row's default %q, want \"N-42\" (continuing after the source)", got)
	}
	if _, err := conn.Exec(ctx, `DROP SEQUENCE app."Counter"`); err != nil {
		t.Errorf("the source sequence cannot be dropped after the restore: %v", err)
	}
	got := queryOne[string](t, ctx, conn, notesDefs, target)
	if !strings.Contains(got, `nextval('tw_acme_lsn_0_100."Counter"'::regclass)`) {
		t.Errorf("restored definitions %q do not draw from the copy", got)
	}
}
