package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantwal/tenantwal/schemas"
)

// columnFact is what the catalog says about one column beyond what
// pgoutput and loadTable record: its attnum, the value rows written before
// it was added read (attmissingval), the transaction that last changed
// its pg_attribute row, and its collation when not its type's default.
type columnFact struct {
	num       int16
	typeOID   uint32
	missing   *string
	xmin      string
	collation string
}

// attmissingval is an anyarray of one element of the column's type:
// array_to_string gives the element's own text output (parsing the
// array's text as text[] would split a box, whose arrays use ';').
const columnFactsSQL = `
SELECT a.attname, a.attnum, a.atttypid, CASE WHEN a.atthasmissing THEN array_to_string(a.attmissingval, '') END, a.xmin::text,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text ELSE '' END
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`

func loadColumnFacts(ctx context.Context, q querier, relid uint32) (map[string]columnFact, error) {
	rows, err := q.Query(ctx, columnFactsSQL, relid)
	if err != nil {
		return nil, fmt.Errorf("read attributes of relation %d: %w", relid, err)
	}
	defer rows.Close()
	out := map[string]columnFact{}
	for rows.Next() {
		var name string
		var f columnFact
		if err := rows.Scan(&name, &f.num, &f.typeOID, &f.missing, &f.xmin, &f.collation); err != nil {
			return nil, fmt.Errorf("read attributes of relation %d: %w", relid, err)
		}
		out[name] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read attributes of relation %d: %w", relid, err)
	}
	return out, nil
}

const generatedSQL = `
SELECT a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid), a.attnotnull
FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = 's'
ORDER BY a.attnum`

// indexesSQL lists the table's indexes other than the primary key's and
// those a constraint owns (UNIQUE, EXCLUDE: recorded as constraints). For
// each: whether it is on plain columns only and those columns (the form
// older archives recorded), pg_get_indexdef, the prefix pg_get_indexdef
// prints before the key list (so the rest is known to name no table), and
// every column of the table it depends on (keys, expressions, predicate).
const indexesSQL = `
SELECT c.relname::text, i.indisunique, am.amname::text,
       i.indexprs IS NULL AND i.indpred IS NULL AND NOT (0 = ANY (i.indkey[0:i.indnkeyatts-1])),
       array(SELECT a.attname::text FROM unnest(i.indkey[0:i.indnkeyatts-1]) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord),
       pg_get_indexdef(i.indexrelid),
       format('CREATE %sINDEX %s ON %s%s.%s USING %s ', CASE WHEN i.indisunique THEN 'UNIQUE ' END, quote_ident(c.relname),
              CASE WHEN c.relkind = 'I' THEN 'ONLY ' END, quote_ident(n.nspname), quote_ident(t.relname), quote_ident(am.amname)),
       array(SELECT DISTINCT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = i.indrelid AND a.attnum > 0 AND (a.attnum = ANY (i.indkey) OR a.attnum IN (
                   SELECT d.refobjsubid FROM pg_depend d
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                     AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid)))
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE i.indrelid = $1 AND NOT i.indisprimary AND i.indisvalid
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
ORDER BY c.relname`

// constraintsSQL lists the table's CHECK, UNIQUE, EXCLUDE and FOREIGN KEY
// constraints with pg_get_constraintdef and the columns of the table each
// depends on; for foreign keys also the columns, the referenced table and
// columns, and the definition's text after the REFERENCES clause (NULL when
// the definition does not start as expected).
const constraintsSQL = `
SELECT k.conname::text, k.contype::text, pg_get_constraintdef(k.oid),
       array(SELECT DISTINCT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = k.conrelid AND a.attnum > 0 AND (a.attnum = ANY (k.conkey) OR a.attnum IN (
                   SELECT d.refobjsubid FROM pg_depend d
                   WHERE (d.classid = 'pg_constraint'::regclass AND d.objid = k.oid OR d.classid = 'pg_class'::regclass AND d.objid = k.conindid)
                     AND d.refclassid = 'pg_class'::regclass AND d.refobjid = k.conrelid))),
       coalesce(f.cols, '{}'), coalesce(rn.nspname::text, ''), coalesce(rc.relname::text, ''), coalesce(f.refcols, '{}'),
       CASE WHEN k.contype = 'f' AND starts_with(pg_get_constraintdef(k.oid), f.prefix)
            THEN substr(pg_get_constraintdef(k.oid), length(f.prefix) + 1) END
FROM pg_constraint k
LEFT JOIN pg_class rc ON rc.oid = k.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN LATERAL (
  SELECT cols, refcols, format('FOREIGN KEY (%s) REFERENCES %s.%s(%s)',
         (SELECT string_agg(quote_ident(c), ', ') FROM unnest(cols) c), quote_ident(rn.nspname), quote_ident(rc.relname),
         (SELECT string_agg(quote_ident(c), ', ') FROM unnest(refcols) c)) AS prefix
  FROM (SELECT array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY x(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.attnum ORDER BY x.ord) AS cols,
               array(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY x(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = x.attnum ORDER BY x.ord) AS refcols) x
  WHERE k.contype = 'f') f ON true
WHERE k.conrelid = $1 AND k.contype IN ('c', 'u', 'x', 'f')
ORDER BY k.conname`

// loadIndexesAndConstraints reads the table's indexes and constraints into
// ts, keeping those whose columns ts has (pgoutput's columns and the
// generated ones): the catalog is read after the Relation message, and a
// column may have been added since.
func loadIndexesAndConstraints(ctx context.Context, q querier, ts *schemas.TableSchema) error {
	has := func(cols []string) bool {
		for _, c := range cols {
			if ts.ColumnIndex(c) < 0 && !slices.ContainsFunc(ts.Generated, func(g schemas.GeneratedColumn) bool { return g.Name == c }) {
				return false
			}
		}
		return true
	}
	rows, err := q.Query(ctx, indexesSQL, ts.RelID)
	if err != nil {
		return fmt.Errorf("read indexes of %s: %w", ts.QualifiedName(), err)
	}
	var indexes []schemas.IndexDef
	for rows.Next() {
		var d schemas.IndexDef
		var plain bool
		var def, prefix string
		var deps []string
		if err := rows.Scan(&d.Name, &d.Unique, &d.Method, &plain, &d.Columns, &def, &prefix, &deps); err != nil {
			rows.Close()
			return fmt.Errorf("read indexes of %s: %w", ts.QualifiedName(), err)
		}
		if !plain {
			d.Columns = nil
		}
		if rest, ok := strings.CutPrefix(def, prefix); ok && strings.HasPrefix(rest, "(") {
			d.Def = rest
		} else if !plain {
			continue // an unexpected form: not recreated
		}
		if has(deps) && (d.Def != "" || len(d.Columns) > 0) {
			indexes = append(indexes, d)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read indexes of %s: %w", ts.QualifiedName(), err)
	}
	rows, err = q.Query(ctx, constraintsSQL, ts.RelID)
	if err != nil {
		return fmt.Errorf("read constraints of %s: %w", ts.QualifiedName(), err)
	}
	defer rows.Close()
	var cons []schemas.ConstraintDef
	for rows.Next() {
		var d schemas.ConstraintDef
		var deps []string
		var actions *string
		if err := rows.Scan(&d.Name, &d.Type, &d.Def, &deps, &d.Columns, &d.RefSchema, &d.RefTable, &d.RefColumns, &actions); err != nil {
			return fmt.Errorf("read constraints of %s: %w", ts.QualifiedName(), err)
		}
		if d.Type == "f" {
			if actions == nil {
				continue // an unexpected form: not recreated
			}
			d.Actions = *actions
		} else {
			d.Columns, d.RefColumns = nil, nil
		}
		if has(deps) {
			cons = append(cons, d)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read constraints of %s: %w", ts.QualifiedName(), err)
	}
	ts.Indexes, ts.Constraints = indexes, cons
	return nil
}

// loadGenerated reads the table's STORED generated columns.
func loadGenerated(ctx context.Context, q querier, relid uint32) ([]schemas.GeneratedColumn, error) {
	rows, err := q.Query(ctx, generatedSQL, relid)
	if err != nil {
		return nil, fmt.Errorf("read generated columns of relation %d: %w", relid, err)
	}
	defer rows.Close()
	var out []schemas.GeneratedColumn
	for rows.Next() {
		var g schemas.GeneratedColumn
		if err := rows.Scan(&g.Name, &g.Num, &g.TypeName, &g.Expr, &g.NotNull); err != nil {
			return nil, fmt.Errorf("read generated columns of relation %d: %w", relid, err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read generated columns of relation %d: %w", relid, err)
	}
	return out, nil
}

// applyColumnFacts records attnums and missing values in ts (columns
// matched by name and type: the catalog is read after the Relation
// message, and a column may have been renamed, dropped or added since) and
// marks ts with its generation.
func applyColumnFacts(ts *schemas.TableSchema, facts map[string]columnFact) {
	ts.Generation = ts.RelID
	for i := range ts.Columns {
		if f, ok := facts[ts.Columns[i].Name]; ok && f.typeOID == ts.Columns[i].TypeOID {
			ts.Columns[i].Num, ts.Columns[i].Missing, ts.Columns[i].Collation = f.num, f.missing, f.collation
		}
	}
}

// factsOf returns the column facts a table version recorded.
func factsOf(ts *schemas.TableSchema) map[string]columnFact {
	out := map[string]columnFact{}
	for _, c := range ts.Columns {
		if c.Num != 0 {
			out[c.Name] = columnFact{num: c.Num, typeOID: c.TypeOID, missing: c.Missing, collation: c.Collation}
		}
	}
	return out
}

// rewrittenColumns returns the columns of cur whose values a table rewrite
// since prev (the same table's previous version) set without any change in
// the WAL: a column added with a volatile default (no missing value), and
// a column whose type changed (converted in place, possibly by a USING
// expression).
func rewrittenColumns(prev, cur *schemas.TableSchema) []int {
	if prev == nil || prev.Generation == 0 || prev.Generation != cur.Generation {
		return nil
	}
	var out []int
	for i, c := range cur.Columns {
		if c.Num == 0 {
			continue
		}
		j := -1
		for k, pc := range prev.Columns {
			if pc.Num == c.Num {
				j = k
				break
			}
		}
		switch {
		case j < 0 && c.Missing == nil && c.Default != "":
			out = append(out, i)
		case j >= 0 && (prev.Columns[j].TypeOID != c.TypeOID || prev.Columns[j].TypeMod != c.TypeMod):
			out = append(out, i)
		}
	}
	return out
}

// backfill archives the values a table rewrite gave to rows no change
// carries: for every row the rewriting transaction wrote and nothing
// changed since (its xmin is still the transaction that last changed the
// rewritten columns' catalog rows), an update that sets the rewritten
// columns and leaves every other column unchanged. It runs at the table's
// first change after the rewrite, the first moment capture learns of it,
// after that transaction's own changes (rows it changed are not the
// rewrite's any more).
//
// Race: a row changed after the rewrite but before capture reads it is not
// backfilled (its next change carries the value; restore points between
// the rewrite and that change show NULL for it), and a restore point
// between the rewrite and the table's next change still shows the old
// columns. Tables without a key are not backfilled.
func (p *processor) backfill(ctx context.Context, rel *relation, cols []int, facts map[string]columnFact) error {
	ts := rel.ts
	keys := keyColumns(ts)
	if len(keys) == 0 {
		p.log.Warn("a table without a key was rewritten (ADD COLUMN with a volatile default or a type change): the rewritten values of rows not changed since are not archived",
			slog.String("table", ts.QualifiedName()), slog.String("lsn", p.lsn.String()))
		return nil
	}
	want := map[int]bool{}
	for _, i := range keys {
		want[i] = true
	}
	if rel.route.Column >= 0 {
		want[rel.route.Column] = true
	}
	var xids []string
	for _, i := range cols {
		want[i] = true
		x := facts[ts.Columns[i].Name].xmin
		if x == "" {
			return p.noBackfill(ts, "the table is no longer in the catalog")
		}
		xids = append(xids, x)
	}
	var idx []int
	var sel []string
	for i := range ts.Columns {
		if want[i] {
			idx = append(idx, i)
			sel = append(sel, quoteIdent(ts.Columns[i].Name)+"::text")
		}
	}
	q := fmt.Sprintf("SELECT %s FROM ONLY %s.%s WHERE xmin = ANY($1::text[]::xid[])", strings.Join(sel, ", "), quoteIdent(ts.Schema), quoteIdent(ts.Name))
	rows, err := p.cat.Query(ctx, q, xids)
	if isGone(err) {
		return p.noBackfill(ts, err.Error())
	}
	if err != nil {
		return fmt.Errorf("read the rewritten values of %s at %s: %w", ts.QualifiedName(), p.lsn, err)
	}
	defer rows.Close()
	n := 0
	vals := make([]*string, len(idx))
	dst := make([]any, len(idx))
	for i := range vals {
		dst[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("read the rewritten values of %s at %s: %w", ts.QualifiedName(), p.lsn, err)
		}
		row := make([]schemas.Value, len(ts.Columns))
		for i := range row {
			row[i].Kind = schemas.ValueUnchanged
		}
		for k, i := range idx {
			if v := vals[k]; v == nil {
				row[i] = schemas.Value{Kind: schemas.ValueNull}
			} else {
				row[i] = schemas.Value{Kind: schemas.ValueText, Data: []byte(*v)}
			}
		}
		if err := p.emit(ctx, rel, schemas.Event{Op: schemas.OpUpdate, New: row}); err != nil {
			return err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		if isGone(err) {
			return p.noBackfill(ts, err.Error())
		}
		return fmt.Errorf("read the rewritten values of %s at %s: %w", ts.QualifiedName(), p.lsn, err)
	}
	p.log.Info("table rewritten since its last change: archived the rewritten values",
		slog.String("table", ts.QualifiedName()), slog.String("lsn", p.lsn.String()), slog.Int("rows", n))
	return nil
}

// isGone reports whether err says the table or a column no longer exists
// under the archived name (dropped or renamed since the change being
// decoded).
func isGone(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "42703")
}

func (p *processor) noBackfill(ts *schemas.TableSchema, why string) error {
	p.log.Warn("a table rewrite's values cannot be read back: restore points before the rows' next change show NULL for them",
		slog.String("table", ts.QualifiedName()), slog.String("lsn", p.lsn.String()), slog.String("reason", why))
	return nil
}

// keyColumns returns the columns that identify a row in a restore: the
// primary key, else a replica identity index; nil for a table identified
// by its whole row.
func keyColumns(ts *schemas.TableSchema) []int {
	var out []int
	if ts.ReplicaIdentity == 'i' || len(ts.PrimaryKey) == 0 && ts.ReplicaIdentity != 'f' {
		for i, c := range ts.Columns {
			if c.Key {
				out = append(out, i)
			}
		}
		return out
	}
	for _, k := range ts.PrimaryKey {
		i := ts.ColumnIndex(k)
		if i < 0 {
			return nil
		}
		out = append(out, i)
	}
	return out
}

// enumColumn is a column whose values are labels of an enum type (or
// arrays of them), directly or through domains.
type enumColumn struct {
	index  int
	array  bool
	labels map[string]bool
}

// enumColumns lists ts's enum and enum-array columns with their labels,
// domains over them included.
func enumColumns(ts *schemas.TableSchema) []enumColumn {
	var out []enumColumn
	for i, c := range ts.Columns {
		td, array := enumOf(ts.Types, c.TypeName)
		if td == nil {
			continue
		}
		labels := make(map[string]bool, len(td.Labels))
		for _, l := range td.Labels {
			labels[l] = true
		}
		out = append(out, enumColumn{index: i, array: array, labels: labels})
	}
	return out
}

// enumOf returns the enum type among types whose labels values of type
// name are (or are arrays of), following domains; nil when there is none.
func enumOf(types []schemas.TypeDef, name string) (td *schemas.TypeDef, array bool) {
	for range 8 { // domains over domains, not cycles
		base, arr := strings.CutSuffix(name, "[]")
		array = array || arr
		i := slices.IndexFunc(types, func(d schemas.TypeDef) bool { return d.Name == base })
		switch {
		case i < 0:
			return nil, false
		case types[i].Kind == 'e':
			return &types[i], array
		case types[i].Kind != 'd' || arr && strings.HasSuffix(types[i].BaseType, "[]"):
			return nil, false
		}
		name = types[i].BaseType
	}
	return nil, false
}

// unknownLabel reports whether row holds an enum label its table version
// does not list: ALTER TYPE … ADD VALUE and RENAME VALUE change no table,
// so no Relation message tells capture about them.
func unknownLabel(cols []enumColumn, row []schemas.Value) bool {
	for _, ec := range cols {
		if ec.index >= len(row) || row[ec.index].Kind != schemas.ValueText {
			continue
		}
		v := string(row[ec.index].Data)
		if !ec.array {
			if !ec.labels[v] {
				return true
			}
			continue
		}
		unknown := false
		arrayElems(v, func(el string) bool {
			unknown = !ec.labels[el]
			return !unknown
		})
		if unknown {
			return true
		}
	}
	return false
}

// arrayElems calls fn with each non-NULL element of v, an array's text
// output (an optional "[lo:hi]=" decoration, braces, commas, elements bare
// or in double quotes with backslash escapes), until fn returns false.
func arrayElems(v string, fn func(el string) bool) {
	if strings.HasPrefix(v, "[") {
		if eq := strings.IndexByte(v, '='); eq >= 0 {
			v = v[eq+1:]
		}
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		switch v[i] {
		case '{', '}', ',':
			i++
		case '"':
			b.Reset()
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
			i++ // the closing quote
			if !fn(b.String()) {
				return
			}
		default:
			n := strings.IndexAny(v[i:], "{},")
			if n < 0 {
				n = len(v) - i
			}
			if el := v[i : i+n]; el != "NULL" && !fn(el) {
				return
			}
			i += n
		}
	}
}

// refreshTypes rereads the user-defined types of rel's table after a row
// used an enum label the table version does not list (ALTER TYPE … ADD
// VALUE or RENAME VALUE change no table, so no Relation message tells
// capture about them), and makes the result the table's new version
// (marked for every tenant, as any DDL). The other tables whose enums
// changed with it get their new version too, so every table's version
// from here on agrees on the labels (a restore settles one set of labels
// per type, from the newest version).
func (p *processor) refreshTypes(ctx context.Context, rel *relation) (*relation, error) {
	nrel, err := p.reloadTypes(ctx, rel)
	if err != nil {
		p.log.Warn("a row uses an enum label its table's archived types do not list, and the catalog cannot be read: restores into a database without the label fail",
			slog.String("table", rel.ts.QualifiedName()), slog.String("lsn", p.lsn.String()), slog.Any("error", err))
		rel.enums = nil // do not retry for every row
		return rel, nil
	}
	if nrel == rel {
		// The label is not in the catalog either (added and renamed
		// again since the row was written): stop checking.
		rel.enums = nil
		return rel, nil
	}
	for id, other := range p.rels {
		if id == rel.ts.RelID || other.route.Excluded || !changedEnums(rel.ts.Types, nrel.ts.Types, other.ts.Types) {
			continue
		}
		if _, err := p.reloadTypes(ctx, other); err != nil {
			p.log.Warn("an enum type's labels changed and a table using it cannot be read from the catalog: its archived labels are left as they were",
				slog.String("table", other.ts.QualifiedName()), slog.String("lsn", p.lsn.String()), slog.Any("error", err))
		}
	}
	return nrel, nil
}

// reloadTypes reads the user-defined types of rel's table and the columns'
// type names (ALTER TYPE … RENAME changes them without a Relation
// message) from the catalog. When they make a new version, it becomes the
// table's relation, marked for every tenant at the end of the transaction,
// and is returned; else rel is. Unlike refreshTypes it never stops the
// label checks, so it suits any caller that learns of a type change (an
// event trigger's message).
func (p *processor) reloadTypes(ctx context.Context, rel *relation) (*relation, error) {
	cat, err := loadTable(ctx, p.cat, rel.ts.RelID)
	if err != nil {
		return nil, err
	}
	ts := *rel.ts
	ts.Types = cat.Types
	ts.Columns = slices.Clone(ts.Columns)
	for i, c := range ts.Columns {
		if j := cat.ColumnIndex(c.Name); j >= 0 && cat.Columns[j].TypeOID == c.TypeOID {
			ts.Columns[i].TypeName = cat.Columns[j].TypeName
		}
	}
	if ts.ComputeVersion() == rel.ts.Version {
		return rel, nil
	}
	nrel := &relation{ts: &ts, route: rel.route, noTenantKey: rel.noTenantKey, enums: enumColumns(&ts)}
	p.rels[ts.RelID] = nrel
	p.log.Info("enum labels or types changed: the table's types are archived again", slog.String("table", ts.QualifiedName()), slog.String("lsn", p.lsn.String()))
	p.deferMarker(nrel)
	return nrel, nil
}

// changedEnums reports whether types uses an enum that differs between
// before and after (matched by name or by a label OID in common).
func changedEnums(before, after, types []schemas.TypeDef) bool {
	same := func(a, b *schemas.TypeDef) bool {
		return a.Name == b.Name || slices.ContainsFunc(a.LabelOIDs, func(o uint32) bool { return slices.Contains(b.LabelOIDs, o) })
	}
	for i := range after {
		a := &after[i]
		if a.Kind != 'e' {
			continue
		}
		k := slices.IndexFunc(before, func(b schemas.TypeDef) bool { return same(&b, a) })
		if k >= 0 && slices.Equal(before[k].Labels, a.Labels) && before[k].Name == a.Name {
			continue
		}
		if slices.ContainsFunc(types, func(t schemas.TypeDef) bool { return t.Kind == 'e' && (same(&t, a) || k >= 0 && same(&t, &before[k])) }) {
			return true
		}
	}
	return false
}
