package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/schemas"
)

func TestSplitStatements(t *testing.T) {
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"ALTER TABLE t ADD COLUMN a int", []string{"ALTER TABLE t ADD COLUMN a int"}},
		{"  ALTER TABLE t ADD COLUMN a int ;\n", []string{"ALTER TABLE t ADD COLUMN a int"}},
		{"ALTER TABLE t ADD b int; UPDATE t SET b = 1", []string{"ALTER TABLE t ADD b int", "UPDATE t SET b = 1"}},
		{"ALTER TABLE t ADD b text DEFAULT 'a;b'", []string{"ALTER TABLE t ADD b text DEFAULT 'a;b'"}},
		{"ALTER TABLE t ADD b text DEFAULT 'it''s;'", []string{"ALTER TABLE t ADD b text DEFAULT 'it''s;'"}},
		{`ALTER TABLE t ADD b text DEFAULT E'\';'`, []string{`ALTER TABLE t ADD b text DEFAULT E'\';'`}},
		{`ALTER TABLE "a;b" ADD c int`, []string{`ALTER TABLE "a;b" ADD c int`}},
		{`ALTER TABLE "a"";b" ADD c int`, []string{`ALTER TABLE "a"";b" ADD c int`}},
		{"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", []string{"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql"}},
		{"CREATE FUNCTION f() RETURNS int AS $body$ SELECT ';$$'; $body$ LANGUAGE sql; DROP TABLE x",
			[]string{"CREATE FUNCTION f() RETURNS int AS $body$ SELECT ';$$'; $body$ LANGUAGE sql", "DROP TABLE x"}},
		{"SELECT $1; DROP TABLE x", []string{"SELECT $1", "DROP TABLE x"}},
		{"-- a; comment\nDROP TABLE x", []string{"DROP TABLE x"}},
		{"/* a; /* nested; */ still; */ DROP TABLE x; /* only a comment; */", []string{"DROP TABLE x"}},
		{";;  ;", nil},
		{"DROP TABLE x -- trailing; comment", []string{"DROP TABLE x"}},
		{"DROP TABLE x; 'unterminated;", []string{"DROP TABLE x", "'unterminated;"}},
	} {
		if got := splitStatements(c.q); !slices.Equal(got, c.want) {
			t.Errorf("splitStatements(%q) = %q, want %q", c.q, got, c.want)
		}
	}
}

func TestDDLText(t *testing.T) {
	for _, c := range []struct{ tag, q, want string }{
		{"ALTER TABLE", "ALTER TABLE t ADD a int;", "ALTER TABLE t ADD a int"},
		{"CREATE INDEX", "/* migration 7 */ CREATE INDEX ON t (a)", "CREATE INDEX ON t (a)"},
		{"ALTER TABLE", "ALTER TABLE t ADD a int; UPDATE t SET a = 1 WHERE tenant_id = 'other'", "ALTER TABLE (text not recorded: the query string held 2 statements)"},
		{"CREATE TABLE AS", "CREATE TABLE x AS SELECT * FROM t WHERE tenant_id = 'other'", "CREATE TABLE AS (text not recorded: it holds rows)"},
		{"ALTER TABLE", "DO $$ BEGIN ALTER TABLE t ADD a int; UPDATE t SET a = 1; END $$", "ALTER TABLE (text not recorded: run from DO)"},
		{"ALTER TABLE", "SELECT migrate()", "ALTER TABLE (text not recorded: run from SELECT)"},
		{"", "ALTER TABLE t ADD a int", ""},
	} {
		if got := ddlText(c.tag, c.q); got != c.want {
			t.Errorf("ddlText(%q, %q) = %q, want %q", c.tag, c.q, got, c.want)
		}
	}
}

// FuzzSplitStatements checks that splitting never panics, returns text of
// the query string (when it has no comments), and is stable: each
// statement it returns splits into itself.
func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{"ALTER TABLE t ADD b int; UPDATE t SET b = 1", "SELECT 'a;b', \"c;d\", $x$;$x$, E'\\';'", "/* /* */ */ -- x\n;", "$$", "E'", "$a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		for _, s := range splitStatements(q) {
			if s == "" || s != strings.TrimSpace(s) {
				t.Fatalf("statement %q is empty or untrimmed", s)
			}
			if !strings.ContainsAny(q, "-/") && !strings.Contains(q, s) {
				t.Fatalf("statement %q is not in %q", s, q)
			}
			if again := splitStatements(s); len(again) != 1 || again[0] != s {
				t.Fatalf("statement %q of %q splits into %q", s, q, again)
			}
		}
	})
}

// TestDDLTriggerMessages installs the event triggers and reads what they
// write with test_decoding: one message per DDL command naming the table
// and its publication, none for a transaction that says it is a tenantwal
// restore (schemas.RestoreSetting), and the user's DDL still succeeds when
// the trigger cannot describe it.
func TestDDLTriggerMessages(t *testing.T) {
	ctx := t.Context()
	cfg, err := pgx.ParseConfig(pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	// Commits must be flushed for the slot to decode them at once.
	cfg.RuntimeParams["synchronous_commit"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE PUBLICATION p_msgs FOR ALL TABLES`)
	// A schema tenantwal that a role other than a superuser owns: its owner
	// could replace the functions the trigger runs as a superuser.
	app := pgtest.RandomName("app_")
	exec(`CREATE ROLE ` + app + `; CREATE SCHEMA tenantwal AUTHORIZATION ` + app)
	defer conn.Exec(context.WithoutCancel(ctx), `DROP SCHEMA IF EXISTS tenantwal CASCADE; DROP ROLE `+app)
	err = ensureDDLTrigger(ctx, conn, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), app) || !strings.Contains(err.Error(), "ALTER SCHEMA tenantwal OWNER TO") {
		t.Fatalf("installing into a schema %s owns: %v, want a refusal naming the owner and the fix", app, err)
	}
	exec(`ALTER SCHEMA tenantwal OWNER TO CURRENT_USER`)
	// A function left there by that role keeps no owner but ours.
	exec(`CREATE FUNCTION tenantwal.describe_table(rel oid) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
		ALTER FUNCTION tenantwal.describe_table(oid) OWNER TO ` + app)
	if err := ensureDDLTrigger(ctx, conn, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"tenantwal.describe_table(oid)", "tenantwal.record_ddl()"} {
		var owner string
		var callable bool
		if err := conn.QueryRow(ctx, `SELECT pg_get_userbyid(proowner), has_function_privilege($1, oid, 'EXECUTE') FROM pg_proc WHERE oid = $2::regprocedure`,
			app, fn).Scan(&owner, &callable); err != nil {
			t.Fatal(err)
		}
		if owner == app || callable {
			t.Errorf("function %s: owner %s, callable by %s: %v", fn, owner, app, callable)
		}
	}
	if err := ensureDDLTrigger(ctx, conn, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("installing twice: %v", err)
	}
	slot := pgtest.RandomName("s_")
	exec(`SELECT pg_create_logical_replication_slot('` + slot + `', 'test_decoding')`)
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_drop_replication_slot($1)`, slot)
	// changes decodes what the slot holds: each change's test_decoding
	// line, and the DDL message it is, if it is one.
	type decoded struct {
		data string
		msg  *ddlMessage
	}
	changes := func() []decoded {
		t.Helper()
		rows, err := conn.Query(ctx, `SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL)`, slot)
		if err != nil {
			t.Fatal(err)
		}
		datas, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]decoded, len(datas))
		for i, d := range datas {
			out[i].data = d
			if _, content, ok := strings.Cut(d, "content:"); ok && strings.Contains(d, "prefix: "+ddlMessagePrefix+",") {
				out[i].msg = &ddlMessage{}
				if err := json.Unmarshal([]byte(content), out[i].msg); err != nil {
					t.Fatalf("message %q: %v", content, err)
				}
			}
		}
		return out
	}
	messages := func() []ddlMessage {
		t.Helper()
		var out []ddlMessage
		for _, c := range changes() {
			if c.msg != nil {
				out = append(out, *c.msg)
			}
		}
		return out
	}

	exec(`CREATE TABLE public.t (tenant_id text, id int, PRIMARY KEY (tenant_id, id))`)
	exec(`CREATE INDEX t_id ON public.t (id)`)
	got := messages()
	if len(got) != 2 || got[0].Tag != "CREATE TABLE" || got[1].Tag != "CREATE INDEX" {
		t.Fatalf("messages %+v, want CREATE TABLE and CREATE INDEX", got)
	}
	for _, m := range got {
		if len(m.Tables) != 1 || m.Tables[0].Name != "t" || !slices.Equal(m.Tables[0].Pubs, []string{"p_msgs"}) || len(m.Tables[0].Catalog) != len(catalogQueries) {
			t.Errorf("%s: tables %+v", m.Tag, m.Tables)
		}
	}
	if cols := got[0].Tables[0].Columns; len(cols) != 2 || !cols[0].Key || !cols[1].Key || cols[1].Num != 2 {
		t.Errorf("CREATE TABLE: columns %+v", cols)
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT set_config($1, 'on', true)`, schemas.RestoreSetting); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE public.restored (id int PRIMARY KEY); DROP TABLE public.restored`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := messages(); len(got) != 0 {
		t.Errorf("a restore's DDL wrote %+v", got)
	}

	// The user's SAVEPOINT around a DDL: its message is decoded between
	// the rows written before and after it (a message alone in a
	// subtransaction would come after the next change), and not at all
	// when the subtransaction is rolled back.
	exec(`BEGIN; INSERT INTO public.t VALUES ('a', 1); SAVEPOINT s; ALTER TABLE public.t ADD COLUMN y int; RELEASE s;
		INSERT INTO public.t VALUES ('a', 2, 2); SAVEPOINT r; ALTER TABLE public.t ADD COLUMN z int; ROLLBACK TO r;
		INSERT INTO public.t VALUES ('a', 3, 3); COMMIT`)
	var order []string
	for _, c := range changes() {
		switch {
		case strings.HasPrefix(c.data, "table public.t: INSERT:"):
			_, id, _ := strings.Cut(c.data, "id[integer]:")
			order = append(order, "insert "+strings.Fields(id)[0])
		case c.msg != nil:
			cols := ""
			if len(c.msg.Tables) == 1 {
				cols = fmt.Sprint(len(c.msg.Tables[0].Columns))
			}
			order = append(order, c.msg.Tag+" "+cols)
		}
	}
	if want := []string{"insert 1", "ALTER TABLE 3", "insert 2", "insert 3"}; !slices.Equal(order, want) {
		t.Errorf("decoded %q, want %q", order, want)
	}

	// With standard_conforming_strings off a backslash escapes in '' (the
	// statement split does not follow): the message says so, and capture
	// records only the tag.
	exec(`SET standard_conforming_strings = off`)
	exec(`ALTER TABLE public.t ADD COLUMN q text DEFAULT 'a\\'`)
	exec(`RESET standard_conforming_strings`)
	exec(`ALTER TABLE public.t ADD COLUMN q2 text`)
	if got := messages(); len(got) != 2 || !got[0].BackslashQuote || got[1].BackslashQuote {
		t.Errorf("messages %+v: want backslash_quote set for the first ALTER only", got)
	}

	// The trigger cannot describe the table (its function is broken): the
	// DDL still runs, with a warning, and nothing is written.
	exec(`CREATE OR REPLACE FUNCTION tenantwal.describe_table(rel oid) RETURNS jsonb LANGUAGE sql AS 'SELECT to_jsonb(1/0)'`)
	exec(`ALTER TABLE public.t ADD COLUMN x int`)
	if got := messages(); len(got) != 0 {
		t.Errorf("a failed description wrote %+v", got)
	}
	// A dropped table names the publications that published it: one that
	// listed it, FOR ALL TABLES ones, one of its schema.
	exec(`CREATE PUBLICATION p_list FOR TABLE public.t; CREATE SCHEMA s2; CREATE TABLE s2.u (id int); CREATE PUBLICATION p_schema FOR TABLES IN SCHEMA s2`)
	messages()
	exec(`DROP TABLE public.t, s2.u`)
	got = messages()
	if len(got) != 1 || got[0].Event != "sql_drop" || len(got[0].Objects) < 3 {
		t.Fatalf("DROP TABLE wrote %+v, want one sql_drop message naming the tables and t's indexes", got)
	}
	pubs := map[string][]string{}
	for _, o := range got[0].Objects {
		if o.Type == "table" {
			slices.Sort(o.Pubs)
			pubs[o.Schema+"."+o.Name] = o.Pubs
		}
	}
	if want := []string{"p_list", "p_msgs"}; !slices.Equal(pubs["public.t"], want) {
		t.Errorf("public.t dropped with publications %q, want %q", pubs["public.t"], want)
	}
	if want := []string{"p_msgs", "p_schema"}; !slices.Equal(pubs["s2.u"], want) {
		t.Errorf("s2.u dropped with publications %q, want %q", pubs["s2.u"], want)
	}
}
