package capture

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/schemas"
)

// pinnedSettings make every value's text form independent of the server's
// and the role's defaults (PITFALLS 17). The replication connection and the
// snapshot connection both use them.
var pinnedSettings = map[string]string{
	"DateStyle":          "ISO",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"TimeZone":           "UTC",
	"lc_monetary":        "C",
	"client_encoding":    "UTF8",
}

// connectSQL opens a normal SQL connection to the source with the pinned
// settings and a catalog-only search_path, so format_type() qualifies every
// non-built-in type.
func connectSQL(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse source DSN: %w", err)
	}
	for k, v := range pinnedSettings {
		cfg.RuntimeParams[k] = v
	}
	cfg.RuntimeParams["search_path"] = "pg_catalog"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "tenantwal"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to source PostgreSQL at %s:%d: %w (check --dsn and that the server is running)", cfg.Host, cfg.Port, err)
	}
	return conn, nil
}

// querier is what the catalog queries need: a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const columnsSQL = `
SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod),
       a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum`

const tableSQL = `
SELECT n.nspname, c.relname, c.relreplident::text,
       coalesce((SELECT array_agg(a.attname ORDER BY k.ord)
                 FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE i.indrelid = c.oid AND i.indisprimary), '{}'),
       coalesce((SELECT array_agg(a.attname ORDER BY k.ord)
                 FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE i.indrelid = c.oid AND i.indisreplident), '{}'),
       coalesce(obj_description(n.oid, 'pg_namespace'), '') LIKE $2 || '%'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1`

// typesSQL lists the user-defined types the columns use: directly, as
// array elements, under a domain, or inside a composite or range type,
// recursively. Enums come with their labels and the labels' OIDs in sort
// order, domains with their base type; composites, ranges and multiranges
// by name only (a restore does not recreate them; their presence tells it
// an enum may be inside).
const typesSQL = `
WITH RECURSIVE used(oid) AS (
  SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
  UNION
  SELECT x.oid FROM used u JOIN pg_type t ON t.oid = u.oid
  CROSS JOIN LATERAL (
    SELECT t.typelem WHERE t.typelem <> 0 AND t.typcategory = 'A'
    UNION ALL SELECT t.typbasetype WHERE t.typtype = 'd'
    UNION ALL SELECT a.atttypid FROM pg_attribute a WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE t.typtype = 'r' AND r.rngtypid = t.oid
    UNION ALL SELECT r.rngtypid FROM pg_range r WHERE t.typtype = 'm' AND r.rngmultitypid = t.oid
  ) x(oid)
)
SELECT format('%I.%I', n.nspname, t.typname), t.typtype::text,
       coalesce((SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{}'),
       coalesce((SELECT array_agg(e.oid ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{}'),
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE '' END
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.oid IN (SELECT oid FROM used)
  AND (t.typtype IN ('e', 'd') OR t.typtype IN ('c', 'r', 'm') AND t.oid >= 16384)
ORDER BY 1`

// loadTable reads the catalog description of relation relid. Columns are
// the ones pgoutput sends: not dropped, not generated, in attnum order.
func loadTable(ctx context.Context, q querier, relid uint32) (*schemas.TableSchema, error) {
	ts := &schemas.TableSchema{RelID: relid}
	var ident string
	var pk, ri []string
	err := q.QueryRow(ctx, tableSQL, relid, schemas.RestoreSchemaComment).Scan(&ts.Schema, &ts.Name, &ident, &pk, &ri, &ts.RestoreTarget)
	if err != nil {
		return nil, fmt.Errorf("read catalog of relation %d: %w", relid, err)
	}
	if ident != "" {
		ts.ReplicaIdentity = ident[0]
	}
	ts.PrimaryKey = pk
	rows, err := q.Query(ctx, columnsSQL, relid)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", ts.QualifiedName(), err)
	}
	for rows.Next() {
		var c schemas.Column
		var identity string
		if err := rows.Scan(&c.Name, &c.TypeOID, &c.TypeMod, &c.TypeName, &c.NotNull, &c.Default, &identity); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read columns of %s: %w", ts.QualifiedName(), err)
		}
		if identity != "" {
			c.Identity = identity[0]
		}
		ts.Columns = append(ts.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", ts.QualifiedName(), err)
	}
	keyCols := pk
	switch ts.ReplicaIdentity {
	case 'i':
		keyCols = ri
	case 'f':
		keyCols = nil
		for i := range ts.Columns {
			ts.Columns[i].Key = true
		}
	case 'n':
		keyCols = nil
	}
	for _, k := range keyCols {
		if i := ts.ColumnIndex(k); i >= 0 {
			ts.Columns[i].Key = true
		}
	}
	trows, err := q.Query(ctx, typesSQL, relid)
	if err != nil {
		return nil, fmt.Errorf("read types of %s: %w", ts.QualifiedName(), err)
	}
	for trows.Next() {
		var td schemas.TypeDef
		var kind string
		if err := trows.Scan(&td.Name, &kind, &td.Labels, &td.LabelOIDs, &td.BaseType); err != nil {
			trows.Close()
			return nil, fmt.Errorf("read types of %s: %w", ts.QualifiedName(), err)
		}
		td.Kind = kind[0]
		if td.Kind != 'e' {
			td.Labels, td.LabelOIDs = nil, nil
		}
		ts.Types = append(ts.Types, td)
	}
	if err := trows.Err(); err != nil {
		return nil, fmt.Errorf("read types of %s: %w", ts.QualifiedName(), err)
	}
	return ts, nil
}

// publishedTable is one table of the publication.
type publishedTable struct {
	RelID   uint32
	Schema  string
	Name    string
	RelKind byte
}

func (p publishedTable) qualified() string { return quoteIdent(p.Schema) + "." + quoteIdent(p.Name) }

// publishedTables lists the publication's tables (roots, with
// publish_via_partition_root) in name order.
func publishedTables(ctx context.Context, q querier, publication string) ([]publishedTable, error) {
	rows, err := q.Query(ctx, `
SELECT c.oid, pt.schemaname, pt.tablename, c.relkind::text
FROM pg_publication_tables pt
JOIN pg_namespace n ON n.nspname = pt.schemaname
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
WHERE pt.pubname = $1
ORDER BY 2, 3`, publication)
	if err != nil {
		return nil, fmt.Errorf("list tables of publication %q: %w", publication, err)
	}
	defer rows.Close()
	var out []publishedTable
	for rows.Next() {
		var p publishedTable
		var kind string
		if err := rows.Scan(&p.RelID, &p.Schema, &p.Name, &kind); err != nil {
			return nil, fmt.Errorf("list tables of publication %q: %w", publication, err)
		}
		p.RelKind = kind[0]
		out = append(out, p)
	}
	return out, rows.Err()
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// quoteLiteral quotes an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
