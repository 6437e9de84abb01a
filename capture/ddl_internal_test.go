package capture

import (
	"slices"
	"strings"
	"testing"
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
