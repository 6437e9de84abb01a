package replayer_test

import (
	"bytes"
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// binaryTypes has a column of every type the restore copies in binary
// format.
func binaryTypes() *schemas.TableSchema {
	return replayer.TableSchemaFor("app", "typed",
		schemas.Column{Name: "id", TypeOID: 20, TypeMod: -1, TypeName: "bigint", Key: true, NotNull: true},
		schemas.Column{Name: "i2", TypeOID: 21, TypeMod: -1, TypeName: "smallint"},
		schemas.Column{Name: "i4", TypeOID: 23, TypeMod: -1, TypeName: "integer"},
		schemas.Column{Name: "b", TypeOID: 16, TypeMod: -1, TypeName: "boolean"},
		schemas.Column{Name: "n", TypeOID: 1700, TypeMod: -1, TypeName: "numeric"},
		schemas.Column{Name: "n2", TypeOID: 1700, TypeMod: 14<<16 | 2 + 4, TypeName: "numeric(14,2)"},
		schemas.Column{Name: "d", TypeOID: 1082, TypeMod: -1, TypeName: "date"},
		schemas.Column{Name: "ts", TypeOID: 1114, TypeMod: -1, TypeName: "timestamp without time zone"},
		schemas.Column{Name: "tz", TypeOID: 1184, TypeMod: -1, TypeName: "timestamp with time zone"},
		schemas.Column{Name: "u", TypeOID: 2950, TypeMod: -1, TypeName: "uuid"},
		schemas.Column{Name: "j", TypeOID: 3802, TypeMod: -1, TypeName: "jsonb"},
		schemas.Column{Name: "js", TypeOID: 114, TypeMod: -1, TypeName: "json"},
		schemas.Column{Name: "t", TypeOID: 25, TypeMod: -1, TypeName: "text"},
		schemas.Column{Name: "vc", TypeOID: 1043, TypeMod: 8 + 4, TypeName: "character varying(8)"},
		schemas.Column{Name: "c", TypeOID: 1042, TypeMod: 4 + 4, TypeName: "character(4)"},
	)
}

// Values of the binary-format types restore exactly, edge values included;
// a value with no exact binary form here (a BC timestamp) makes the table
// load in text format, just as exactly.
func TestApplyBinaryFormatValues(t *testing.T) {
	ts := binaryTypes()
	// PostgreSQL's own output (UTC, ISO), edge values included.
	rows := [][]string{
		{"1", "-32768", "-2147483648", "t", "0", "0.00", "2000-01-01", "2000-01-01 00:00:00", "2000-01-01 00:00:00+00",
			"00000000-0000-0000-0000-000000000000", `{}`, `{"a":1, "a":2}`, "", "", "    "},
		{"2", "32767", "2147483647", "f", "NaN", "-0.01", "infinity", "infinity", "-infinity",
			"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `{"t": "a\tb\n", "u": "ü"}`, `[1, 2.50, "x"]`, "tab\there\nnewline \\ back", "ü€😀", "ab  "},
		{"-9223372036854775808", "0", "0", "∅", "-123456789012345678901234567890.000000000000000000012300", "123456789012.99",
			"-infinity", "-infinity", "infinity", "ffffffff-ffff-ffff-ffff-ffffffffffff", `null`, `  {"sp" : 1 }  `, "x", "12345678", "abcd"},
		{"9223372036854775807", "∅", "∅", "∅", "0.000001", "-99.90", "0001-01-01", "0001-01-01 00:00:00", "0001-01-01 00:00:00+00",
			"∅", "∅", "∅", "∅", "∅", "∅"},
		{"5", "1", "1", "t", "10000", "10000.00", "2024-02-29", "2024-02-29 23:59:59.999999", "1999-12-31 23:59:59.999999+00",
			"01234567-89ab-cdef-0123-456789abcdef", `[]`, `"s"`, `\N`, "a", "a   "},
	}
	// Values spelt the way PostgreSQL never prints them but reads (a
	// numeric exponent, an upper-case uuid, a short char) and a BC
	// timestamp: the table is copied in text format, as exactly.
	odd := []string{"6", "-1", "-1", "f", "-1e5", "1.5", "9999-12-31", "9999-12-31 23:59:59.5", "2026-11-23 10:15:00.123456+00",
		"01234567-89AB-CDEF-0123-456789ABCDEF", `1`, `1`, "y", "b", "b"}
	oddWant := []string{"6", "-1", "-1", "f", "-100000", "1.50", "9999-12-31", "9999-12-31 23:59:59.5", "2026-11-23 10:15:00.123456+00",
		"01234567-89ab-cdef-0123-456789abcdef", `1`, `1`, "y", "b", "b   "}
	bc := slices.Clone(rows[4])
	bc[0], bc[8] = "7", "0044-03-15 12:00:00+00 BC"

	check := func(t *testing.T, rows, want [][]string, format string) {
		a := replayer.NewArchiveBuilder(t, "acme")
		var objs []schemas.ObjectRef
		for _, r := range rows {
			objs = append(objs, a.SnapshotObject(ts, 0x100, vals(r)))
		}
		a.Snapshot(0x100, objs, ts)
		// A change touches one row, so rows take both paths.
		a.Segment([]*schemas.TableSchema{ts}, a.Object(ts, "segments", []replayer.Change{
			{LSN: 0x200, Seq: 1, Op: schemas.OpUpdate, Vals: vals(rows[1])},
		}))
		conn, ctx := connect(t, pgtest.NewDB(t))
		var logs bytes.Buffer
		plan, err := replayer.PlanRestore(a.Load(), replayer.Target{LSN: 0x200})
		if err != nil {
			t.Fatal(err)
		}
		res, err := replayer.Apply(ctx, a.Store, conn, plan, replayer.Options{
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "format="+format) {
			t.Fatalf("want a %s COPY; log:\n%s", format, logs.String())
		}
		sel := make([]string, len(ts.Columns))
		for i, c := range ts.Columns {
			// The type's output function (a cast to text trims char(n)
			// and spells booleans out).
			sel[i] = "CASE WHEN " + c.Name + " IS NOT NULL THEN format('%s', " + c.Name + ") END"
		}
		got := queryRows(t, ctx, conn, "SELECT "+strings.Join(sel, ", ")+" FROM "+res.Tables[0].Target+" ORDER BY id")
		wantSorted := sortByID(want)
		for i := range wantSorted {
			if i >= len(got) || !slices.Equal(got[i], wantSorted[i]) {
				t.Fatalf("restored rows (%s):\n got %q\nwant %q", format, got, wantSorted)
			}
		}
		if len(got) != len(wantSorted) {
			t.Fatalf("restored %d rows, want %d", len(got), len(wantSorted))
		}
	}
	t.Run("binary", func(t *testing.T) { check(t, rows, rows, "binary") })
	t.Run("odd spelling", func(t *testing.T) {
		check(t, append(slices.Clone(rows), odd), append(slices.Clone(rows), oddWant), "text")
	})
	t.Run("BC", func(t *testing.T) { check(t, append(slices.Clone(rows), bc), append(slices.Clone(rows), bc), "text") })
}

// queryRows returns every row of sql as text, NULL as "∅".
func queryRows(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string) [][]string {
	t.Helper()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vs, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		r := make([]string, len(vs))
		for i, v := range vs {
			r[i] = "∅"
			if v != nil {
				r[i] = v.(string)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sortByID sorts rows by their first column, an integer.
func sortByID(rows [][]string) [][]string {
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b []string) int {
		x, _ := strconv.ParseInt(a[0], 10, 64)
		y, _ := strconv.ParseInt(b[0], 10, 64)
		return cmp.Compare(x, y)
	})
	return out
}
