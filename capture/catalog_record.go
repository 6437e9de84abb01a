package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tenantwal/tenantwal/schemas"
)

// The catalog as a DDL command left it. Capture reads a table's catalog
// facts when it decodes a change, which may be long after the command (a
// capture that was down, or behind): the defaults, indexes and constraints
// of that later moment. The DDL event trigger runs the very queries
// describe makes, at the command, through tenantwal.describe_table, and
// sends their rows with its message; describe then reads them from there
// (recordedCatalog) instead of the live catalog.

// catalogQuery is one query describe makes of the catalog, with the number
// of columns it returns ($1 is the table's OID, $2 the restore schema
// comment prefix).
type catalogQuery struct {
	name string
	sql  string
	cols int
}

var catalogQueries = []catalogQuery{
	{"table", tableSQL, 6},
	{"columns", columnsSQL, 7},
	{"types", typesSQL, 5},
	{"facts", columnFactsSQL, 6},
	{"generated", generatedSQL, 5},
	{"indexes", indexesSQL, 8},
	{"constraints", constraintsSQL, 9},
}

// describeTableSQL creates tenantwal.describe_table(oid): the rows of every
// catalogQuery for the table, as {"name": [{"c1": …, "c2": …}, …]}, under
// the settings capture's own connection pins (so expressions print alike).
func describeTableSQL() string {
	var b strings.Builder
	b.WriteString(`CREATE OR REPLACE FUNCTION tenantwal.describe_table(rel oid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp`)
	for _, k := range []string{"DateStyle", "IntervalStyle", "extra_float_digits", "bytea_output", "TimeZone", "lc_monetary"} {
		fmt.Fprintf(&b, " SET %s = %s", k, quoteLiteral(pinnedSettings[k]))
	}
	b.WriteString(" AS $fn$\nDECLARE\n\tout jsonb := '{}';\n\tr jsonb;\nBEGIN\n")
	for _, q := range catalogQueries {
		cols := make([]string, q.cols)
		for i := range cols {
			cols[i] = "c" + strconv.Itoa(i+1)
		}
		fmt.Fprintf(&b, "\tEXECUTE %s INTO r USING rel, %s;\n\tout := out || jsonb_build_object(%s, coalesce(r, '[]'));\n",
			quoteLiteral("SELECT jsonb_agg(to_jsonb(q)) FROM ("+q.sql+") AS q("+strings.Join(cols, ", ")+")"),
			quoteLiteral(schemas.RestoreSchemaComment), quoteLiteral(q.name))
	}
	b.WriteString("\tRETURN out;\nEND\n$fn$")
	return b.String()
}

// recordedCatalog answers describe's catalog queries from the rows the
// event trigger recorded (by catalogQuery name).
type recordedCatalog map[string]json.RawMessage

var errNotRecorded = errors.New("catalog query not recorded by the DDL event trigger")

func (rc recordedCatalog) rows(sql string) (*recordedRows, error) {
	i := slices.IndexFunc(catalogQueries, func(q catalogQuery) bool { return q.sql == sql })
	if i < 0 {
		return nil, errNotRecorded
	}
	q := catalogQueries[i]
	raw, ok := rc[q.name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errNotRecorded, q.name)
	}
	var objs []map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(raw))
	if err := d.Decode(&objs); err != nil {
		return nil, fmt.Errorf("recorded catalog %s: %w", q.name, err)
	}
	out := &recordedRows{name: q.name, i: -1}
	for _, o := range objs {
		row := make([]json.RawMessage, q.cols)
		for c := range row {
			row[c] = o["c"+strconv.Itoa(c+1)]
		}
		out.rows = append(out.rows, row)
	}
	return out, nil
}

func (rc recordedCatalog) Query(_ context.Context, sql string, _ ...any) (pgx.Rows, error) {
	r, err := rc.rows(sql)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (rc recordedCatalog) QueryRow(_ context.Context, sql string, _ ...any) pgx.Row {
	r, err := rc.rows(sql)
	if err != nil {
		return errRow{err}
	}
	return r
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// recordedRows is a pgx.Rows over recorded rows; as a pgx.Row it scans the
// first one (pgx.ErrNoRows when there is none).
type recordedRows struct {
	name string
	rows [][]json.RawMessage
	i    int
	err  error
}

func (r *recordedRows) Close()                                       {}
func (r *recordedRows) Err() error                                   { return r.err }
func (r *recordedRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (r *recordedRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (r *recordedRows) RawValues() [][]byte                          { return nil }
func (r *recordedRows) Conn() *pgx.Conn                              { return nil }
func (r *recordedRows) TypeMap() *pgtype.Map                         { return nil }
func (r *recordedRows) Values() ([]any, error) {
	return nil, errors.New("recorded catalog rows: Values is not supported")
}

func (r *recordedRows) Next() bool {
	if r.err != nil || r.i+1 >= len(r.rows) {
		return false
	}
	r.i++
	return true
}

// Scan as pgx.Rows scans the current row; as pgx.Row, the first.
func (r *recordedRows) Scan(dest ...any) error {
	if r.i < 0 {
		if !r.Next() {
			return pgx.ErrNoRows
		}
	}
	row := r.rows[r.i]
	if len(dest) != len(row) {
		return fmt.Errorf("recorded catalog %s: %d values, scanning %d", r.name, len(row), len(dest))
	}
	for i, d := range dest {
		if err := scanJSON(row[i], d); err != nil {
			r.err = fmt.Errorf("recorded catalog %s, column %d: %w", r.name, i+1, err)
			return r.err
		}
	}
	return nil
}

// scanJSON stores a JSON value (as to_jsonb prints a catalog value: oids
// and other non-numeric types as strings) in one of the destinations the
// catalog queries scan into.
func scanJSON(v json.RawMessage, dest any) error {
	null := len(v) == 0 || string(v) == "null"
	switch d := dest.(type) {
	case *string:
		if null {
			return errors.New("NULL into a string")
		}
		return json.Unmarshal(v, d)
	case **string:
		if null {
			*d = nil
			return nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		*d = &s
		return nil
	case *bool:
		return json.Unmarshal(v, d)
	case *int16:
		n, err := jsonInt(v, 16)
		*d = int16(n)
		return err
	case *int32:
		n, err := jsonInt(v, 32)
		*d = int32(n)
		return err
	case *uint32:
		n, err := jsonInt(v, 33)
		*d = uint32(n)
		return err
	case *[]string:
		if null {
			*d = nil
			return nil
		}
		return json.Unmarshal(v, d)
	case *[]uint32:
		if null {
			*d = nil
			return nil
		}
		var raw []json.RawMessage
		if err := json.Unmarshal(v, &raw); err != nil {
			return err
		}
		out := make([]uint32, len(raw))
		for i, x := range raw {
			n, err := jsonInt(x, 33)
			if err != nil {
				return err
			}
			out[i] = uint32(n)
		}
		*d = out
		return nil
	}
	return fmt.Errorf("cannot scan into %T", dest)
}

// jsonInt reads an integer printed as a JSON number or string; bits 33
// means unsigned 32.
func jsonInt(v json.RawMessage, bits int) (int64, error) {
	s := strings.Trim(string(v), `"`)
	if bits == 33 {
		n, err := strconv.ParseUint(s, 10, 32)
		return int64(n), err
	}
	return strconv.ParseInt(s, 10, bits)
}
