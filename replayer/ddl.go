package replayer

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/schemas"
)

// tableDDL is how one planned table is recreated in the target schema. All
// names are chosen up front, in plan order, so they are the same on every
// run and never collide with each other.
type tableDDL struct {
	plan   *TablePlan
	name   string   // table name in the target schema
	pkey   string   // primary key constraint name, "" when none
	seqs   []seqDDL // sequences to create, in column order
	target string   // schema-qualified, quoted
	// indexes and cons are the names of the schema's Indexes and
	// Constraints in the target schema, by position ("" for an index
	// PostgreSQL names).
	indexes, cons []string
	// created is set once the table is created and loaded.
	created bool
	// notes are what finishTable could not recreate, logged by
	// finishSchema.
	notes []ddlNote
	// copies are the target schema's copies of sequences that column
	// defaults other than the own-sequence ones draw from, shared by
	// every table of the restore.
	copies *seqCopies
}

type seqDDL struct {
	column string
	name   string
	as     string // smallint, integer or bigint
	// source names the source column's sequence as a regclass text
	// ("public.accounts_id_seq"), or the source table for an identity
	// column; empty when unknown.
	source   string
	identity bool
}

// nameTables chooses the target names: the source table name, or
// "<schema>_<table>" when two source tables share a name; then the primary
// key and sequence names, all unique within the schema.
func nameTables(schema string, plans []*TablePlan) []*tableDDL {
	count := map[string]int{}
	for _, tp := range plans {
		count[tp.Schema.Name]++
	}
	used := map[string]bool{}
	out := make([]*tableDDL, len(plans))
	for i, tp := range plans {
		base := tp.Schema.Name
		if count[base] > 1 {
			base = tp.Schema.Schema + "_" + base
		}
		out[i] = &tableDDL{plan: tp, name: uniqueName(base, used)}
		out[i].target = pgx.Identifier{schema, out[i].name}.Sanitize()
	}
	for _, d := range out {
		if len(d.plan.Schema.PrimaryKey) > 0 {
			d.pkey = uniqueName(d.name+"_pkey", used)
		}
		tp := d.plan
		for _, c := range d.plan.Schema.Columns {
			as := integerType(c)
			if as == "" || (c.Identity == 0 && !strings.Contains(c.Default, "nextval(")) {
				continue
			}
			sd := seqDDL{column: c.Name, name: uniqueName(d.name+"_"+c.Name+"_seq", used), as: as}
			if m := nextvalRE.FindStringSubmatch(c.Default); m != nil {
				sd.source = strings.ReplaceAll(m[1], "''", "'")
			} else if c.Identity != 0 {
				sd.source, sd.identity = pgx.Identifier{tp.Schema.Schema, tp.Schema.Name}.Sanitize(), true
			}
			d.seqs = append(d.seqs, sd)
		}
	}
	copies := &seqCopies{schema: schema, names: map[string]string{}, created: map[string]bool{}}
	for _, d := range out {
		nameIndexes(d, used)
		nameSeqCopies(d, copies, used)
	}
	return out
}

// integerType returns the sequence type for an integer column, or "".
func integerType(c schemas.Column) string {
	switch {
	case c.TypeOID == 21 || c.TypeName == "smallint":
		return "smallint"
	case c.TypeOID == 23 || c.TypeName == "integer":
		return "integer"
	case c.TypeOID == 20 || c.TypeName == "bigint":
		return "bigint"
	}
	return ""
}

// uniqueName returns base cut to 63 bytes, with "_2", "_3"... when taken,
// and marks it used.
func uniqueName(base string, used map[string]bool) string {
	for i := 1; ; i++ {
		suffix := ""
		if i > 1 {
			suffix = "_" + strconv.Itoa(i)
		}
		name := truncateUTF8(base, maxIdentLen-len(suffix)) + suffix
		if !used[name] {
			used[name] = true
			return name
		}
	}
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// createTypes makes sure every user-defined type the tables use exists in
// the restore database: enums by their labels, domains by their base type.
// Existing types are kept as they are (a restore into the source database).
// It returns the names of the types it created.
func createTypes(ctx context.Context, tx pgx.Tx, plans []*TablePlan) ([]string, error) {
	seen := map[string]bool{}
	var defs []schemas.TypeDef
	for _, tp := range plans {
		for _, d := range tp.Schema.Types {
			if !seen[d.Name] {
				seen[d.Name] = true
				defs = append(defs, d)
			}
		}
	}
	// Enums first: a domain may be over one.
	slices.SortStableFunc(defs, func(a, b schemas.TypeDef) int {
		return boolInt(a.Kind != 'e') - boolInt(b.Kind != 'e')
	})
	var created []string
	for _, d := range defs {
		ok, err := createType(ctx, tx, d)
		if err != nil {
			return nil, err
		}
		if ok {
			created = append(created, d.Name)
		}
	}
	return created, nil
}

// addEnumLabels settles the labels of the enum types the restore uses and
// makes the types that already exist in the restore database hold them. It
// runs before the restore's transaction (a label added with ALTER TYPE …
// ADD VALUE cannot be used in the transaction that adds it) and before the
// rows are read (their labels are translated to the settled ones); what it
// changes stays even if the restore fails: the labels are the source's.
//
// One set of labels per type: the tables' target versions may list
// different ones (a table none of whose rows used a label added or renamed
// later kept an older version), so every table's target version is given
// the labels of the most recently archived one (plan schemas are replaced
// by copies), and the mappers translate renamed labels to them (by OID).
//
// A type of the restore database that shares label OIDs with the archive is
// the source's own (a restore into the source database): its labels are
// used as they are for the OIDs it has, whatever the archive calls them, and
// it is never given a label the archive renamed away (nor, for archives
// without label OIDs, any label when it has labels the archive does not
// list: one of them may be a renamed one). Any other existing
// type (a copy, created by an earlier restore) gets the labels it lacks:
// renamed from the label the same OID had in an older version when it has
// that one (ALTER TYPE … RENAME VALUE, as the source did), else added, each
// after its predecessor in the settled order (before the first label
// otherwise).
func addEnumLabels(ctx context.Context, conn *pgx.Conn, plans []*TablePlan) error {
	groups := enumGroups(plans)
	for _, g := range groups {
		for _, name := range g.names {
			if err := g.prepare(ctx, conn, name); err != nil {
				return err
			}
		}
	}
	settleEnums(plans, groups)
	return nil
}

// enumGroup is one enum type as the restore uses it.
type enumGroup struct {
	names []string        // its names in the tables' target versions
	def   schemas.TypeDef // the settled labels (a copy)
	since schemas.Pos     // when def's table version was first archived
	// former are the labels each OID has in any planned version.
	former map[uint32][]string
}

// enumGroups gathers the enum types of the tables' target versions, one
// group per type (by name, or label OIDs when it was renamed), settled on
// the version with label OIDs first archived last, then with the most
// labels.
func enumGroups(plans []*TablePlan) []*enumGroup {
	var groups []*enumGroup
	for _, tp := range plans {
		since := firstArchived(tp)
		for i := range tp.Schema.Types {
			d := &tp.Schema.Types[i]
			if d.Kind != 'e' {
				continue
			}
			k := slices.IndexFunc(groups, func(g *enumGroup) bool {
				return (!hasOIDs(d) || !hasOIDs(&g.def)) && slices.Contains(g.names, d.Name) || sameEnum(&g.def, d)
			})
			if k < 0 {
				groups = append(groups, &enumGroup{names: []string{d.Name}, def: cloneTypeDef(*d), since: since})
				continue
			}
			g := groups[k]
			if !slices.Contains(g.names, d.Name) {
				g.names = append(g.names, d.Name)
			}
			if c := cmp.Or(compareBool(hasOIDs(d), hasOIDs(&g.def)), comparePos(since, g.since), cmp.Compare(len(d.Labels), len(g.def.Labels))); c > 0 {
				g.def, g.since = cloneTypeDef(*d), since
			}
		}
	}
	for _, g := range groups {
		g.former = map[uint32][]string{}
		for _, tp := range plans {
			for _, v := range tp.Versions {
				for i := range v.Types {
					d := &v.Types[i]
					if !hasOIDs(d) || !sameEnum(d, &g.def) {
						continue
					}
					for k, o := range d.LabelOIDs {
						if !slices.Contains(g.former[o], d.Labels[k]) {
							g.former[o] = append(g.former[o], d.Labels[k])
						}
					}
				}
			}
		}
	}
	return groups
}

// firstArchived is the first position of tp's objects of its target
// version.
func firstArchived(tp *TablePlan) schemas.Pos {
	var first schemas.Pos
	found := false
	for _, o := range tp.Objects {
		if o.SchemaVersion == tp.Schema.Version && (!found || o.First.Less(first)) {
			first, found = o.First, true
		}
	}
	return first
}

func cloneTypeDef(d schemas.TypeDef) schemas.TypeDef {
	d.Labels, d.LabelOIDs = slices.Clone(d.Labels), slices.Clone(d.LabelOIDs)
	return d
}

func compareBool(a, b bool) int { return boolInt(a) - boolInt(b) }

// prepare makes the type called name in the restore database, if it exists,
// hold g's labels, or takes its labels for g when it is the source's own
// (see addEnumLabels).
func (g *enumGroup) prepare(ctx context.Context, conn *pgx.Conn, name string) error {
	var parts, have []string
	var oids []uint32
	err := conn.QueryRow(ctx, `SELECT parse_ident($1),
		array(SELECT enumlabel::text FROM pg_enum WHERE enumtypid = to_regtype($1) ORDER BY enumsortorder),
		array(SELECT oid FROM pg_enum WHERE enumtypid = to_regtype($1) ORDER BY enumsortorder)`, name).Scan(&parts, &have, &oids)
	if err != nil {
		return fmt.Errorf("user-defined type %q: %w", name, err)
	}
	if len(have) == 0 {
		return nil // created in the restore's transaction, with the settled labels
	}
	d := &g.def
	own := false
	for _, o := range oids {
		if _, ok := g.former[o]; ok || slices.Contains(d.LabelOIDs, o) {
			own = true
		}
	}
	if own && hasOIDs(d) {
		for k, o := range d.LabelOIDs {
			if j := slices.Index(oids, o); j >= 0 {
				d.Labels[k] = have[j]
			}
		}
	}
	if !hasOIDs(d) && !supersetOf(d.Labels, have) {
		// An archive without label OIDs, and the type has labels it
		// does not list: a missing label may have been renamed away
		// since (perhaps in the source's own type), so none is added;
		// rows holding one fail to load.
		return nil
	}
	ident := pgx.Identifier(parts).Sanitize()
	for k, l := range d.Labels {
		if slices.Contains(have, l) {
			continue
		}
		if from := g.renamedFrom(k, have); from != "" {
			if _, err := conn.Exec(ctx, "ALTER TYPE "+ident+" RENAME VALUE "+quoteLiteral(from)+" TO "+quoteLiteral(l)); err != nil {
				return fmt.Errorf("rename label %q of enum %s to %q: %w", from, name, l, err)
			}
			have[slices.Index(have, from)] = l
			continue
		}
		where := " BEFORE " + quoteLiteral(have[0])
		if k > 0 {
			where = " AFTER " + quoteLiteral(d.Labels[k-1])
		}
		if _, err := conn.Exec(ctx, "ALTER TYPE "+ident+" ADD VALUE IF NOT EXISTS "+quoteLiteral(l)+where); err != nil {
			return fmt.Errorf("add label %q to enum %s: %w", l, name, err)
		}
		at := 0
		if k > 0 {
			at = slices.Index(have, d.Labels[k-1]) + 1
		}
		have = slices.Insert(have, at, l)
	}
	return nil
}

// renamedFrom returns a label that have holds and that the OID of g's k-th
// label had in an older version (so the existing type is a copy made
// before a rename), unless g uses that label for another OID; "" when none.
func (g *enumGroup) renamedFrom(k int, have []string) string {
	d := &g.def
	if !hasOIDs(d) {
		return ""
	}
	for _, f := range g.former[d.LabelOIDs[k]] {
		if f != d.Labels[k] && slices.Contains(have, f) && !slices.Contains(d.Labels, f) {
			return f
		}
	}
	return ""
}

// settleEnums gives every table's target version the settled labels of its
// enum types, replacing tp.Schema with a copy where they differ.
func settleEnums(plans []*TablePlan, groups []*enumGroup) {
	for _, tp := range plans {
		copied := false
		for i, d := range tp.Schema.Types {
			if d.Kind != 'e' {
				continue
			}
			k := slices.IndexFunc(groups, func(g *enumGroup) bool { return slices.Contains(g.names, d.Name) })
			if k < 0 {
				continue
			}
			g := groups[k]
			if slices.Equal(d.Labels, g.def.Labels) && slices.Equal(d.LabelOIDs, g.def.LabelOIDs) {
				continue
			}
			if !hasOIDs(&g.def) && !supersetOf(g.def.Labels, d.Labels) {
				continue // no OIDs to tell a rename from another type: as archived
			}
			if !copied {
				s := *tp.Schema
				s.Types = slices.Clone(s.Types)
				tp.Schema, copied = &s, true
			}
			tp.Schema.Types[i].Labels, tp.Schema.Types[i].LabelOIDs = slices.Clone(g.def.Labels), slices.Clone(g.def.LabelOIDs)
		}
	}
}

func supersetOf(a, b []string) bool {
	for _, l := range b {
		if !slices.Contains(a, l) {
			return false
		}
	}
	return true
}

func createType(ctx context.Context, tx pgx.Tx, d schemas.TypeDef) (bool, error) {
	// parse_ident checks the archived name is a (qualified) identifier and
	// nothing else, so it cannot smuggle SQL into the DDL below.
	var parts []string
	if err := tx.QueryRow(ctx, "SELECT parse_ident($1)", d.Name).Scan(&parts); err != nil {
		return false, fmt.Errorf("user-defined type %q: not a type name: %w", d.Name, err)
	}
	if len(parts) == 2 {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", parts[0]).Scan(&exists); err != nil {
			return false, err
		}
		if !exists {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{parts[0]}.Sanitize()); err != nil {
				return false, fmt.Errorf("create schema %q for type %s: %w", parts[0], d.Name, err)
			}
		}
	} else if len(parts) != 1 {
		return false, fmt.Errorf("user-defined type %q: want schema.name", d.Name)
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regtype($1) IS NOT NULL", d.Name).Scan(&exists); err != nil {
		return false, fmt.Errorf("user-defined type %s: %w", d.Name, err)
	}
	if exists {
		return false, nil
	}
	ident := pgx.Identifier(parts).Sanitize()
	var sql string
	switch d.Kind {
	case 'e':
		labels := make([]string, len(d.Labels))
		for i, l := range d.Labels {
			labels[i] = quoteLiteral(l)
		}
		sql = "CREATE TYPE " + ident + " AS ENUM (" + strings.Join(labels, ", ") + ")"
	case 'd':
		if err := checkTypeName(ctx, tx, d.BaseType); err != nil {
			return false, fmt.Errorf("domain %s: base type: %w", d.Name, err)
		}
		sql = "CREATE DOMAIN " + ident + " AS " + d.BaseType
	default:
		return false, fmt.Errorf("user-defined type %s: kind %q cannot be recreated yet; create the type in the restore database first", d.Name, d.Kind)
	}
	if _, err := tx.Exec(ctx, sql); err != nil {
		return false, fmt.Errorf("create type %s: %w", d.Name, err)
	}
	return true, nil
}

// checkTypeName checks that name is a type known to the database. It also
// keeps archived text from being anything but a type name in the DDL:
// to_regtype parses its argument as a type name only.
func checkTypeName(ctx context.Context, tx pgx.Tx, name string) error {
	var ok bool
	if err := tx.QueryRow(ctx, "SELECT to_regtype($1) IS NOT NULL", name).Scan(&ok); err != nil {
		return fmt.Errorf("type %q: %w", name, err)
	}
	if !ok {
		return fmt.Errorf("type %q does not exist in the restore database; create it first", name)
	}
	return nil
}

// createTable creates the table with the target version's columns, in
// source order, and its sequences.
func createTable(ctx context.Context, tx pgx.Tx, d *tableDDL) error {
	ts := d.plan.Schema
	type colDef struct {
		num int16
		sql string
	}
	cols := make([]colDef, 0, len(ts.Columns)+len(ts.Generated))
	byNum := len(ts.Generated) > 0
	for _, c := range ts.Columns {
		if err := checkTypeName(ctx, tx, c.TypeName); err != nil {
			return fmt.Errorf("table %s column %q: %w", d.plan.Name, c.Name, err)
		}
		def := pgx.Identifier{c.Name}.Sanitize() + " " + c.TypeName
		if c.Collation != "" {
			// to_regcollation parses its argument as a collation name
			// only, so the archived text is nothing else.
			var ok bool
			if err := tx.QueryRow(ctx, "SELECT to_regcollation($1) IS NOT NULL", c.Collation).Scan(&ok); err != nil {
				return fmt.Errorf("table %s column %q: collation %q: %w", d.plan.Name, c.Name, c.Collation, err)
			}
			if ok {
				def += " COLLATE " + c.Collation
			} else {
				d.note(fmt.Sprintf("collation of column %q", c.Name), "collation "+c.Collation+" is not in the restore database", def+" COLLATE "+c.Collation, true)
			}
		}
		if c.NotNull {
			def += " NOT NULL"
		}
		cols = append(cols, colDef{c.Num, def})
		byNum = byNum && c.Num > 0
	}
	// STORED generated columns in their place (by attnum when every
	// column's is known, else last): PostgreSQL computes their values
	// while the rows are copied in.
	for _, g := range ts.Generated {
		if err := checkTypeName(ctx, tx, g.TypeName); err != nil {
			return fmt.Errorf("table %s generated column %q: %w", d.plan.Name, g.Name, err)
		}
		def := pgx.Identifier{g.Name}.Sanitize() + " " + g.TypeName + " GENERATED ALWAYS AS (" + g.Expr + ") STORED"
		if g.NotNull {
			def += " NOT NULL"
		}
		cols = append(cols, colDef{g.Num, def})
	}
	if byNum {
		slices.SortStableFunc(cols, func(a, b colDef) int { return int(a.num) - int(b.num) })
	}
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = c.sql
	}
	sql := "CREATE TABLE " + d.target + " (\n\t" + strings.Join(defs, ",\n\t") + "\n)"
	// One statement only: archived expression text cannot append another.
	if err := execOne(ctx, tx, sql); err != nil {
		return fmt.Errorf("create table %s: %w", d.target, err)
	}
	return nil
}

// finishTable adds the primary key and, for every column that took its
// value from a sequence, a sequence owned by the column and set past the
// restored maximum, so new rows never collide with restored ids.
func finishTable(ctx context.Context, tx pgx.Tx, schema string, d *tableDDL) error {
	if d.pkey != "" {
		cols := make([]string, len(d.plan.Schema.PrimaryKey))
		for i, c := range d.plan.Schema.PrimaryKey {
			cols[i] = pgx.Identifier{c}.Sanitize()
		}
		sql := "ALTER TABLE " + d.target + " ADD CONSTRAINT " + pgx.Identifier{d.pkey}.Sanitize() +
			" PRIMARY KEY (" + strings.Join(cols, ", ") + ")"
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("add primary key to %s: %w", d.target, err)
		}
	}
	if err := addIndexesAndConstraints(ctx, tx, d); err != nil {
		return err
	}
	for _, ix := range d.plan.Schema.Indexes {
		if ix.Def != "" {
			continue // added above
		}
		if !indexMethods[ix.Method] {
			return fmt.Errorf("table %s: index method %q is not one this restore recreates", d.plan.Name, ix.Method)
		}
		cols := make([]string, len(ix.Columns))
		for i, c := range ix.Columns {
			cols[i] = pgx.Identifier{c}.Sanitize()
		}
		sql := "CREATE INDEX ON " + d.target + " USING " + ix.Method + " (" + strings.Join(cols, ", ") + ")"
		if ix.Unique {
			sql = "CREATE UNIQUE" + strings.TrimPrefix(sql, "CREATE")
		}
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("index on %s: %w", d.target, err)
		}
	}
	for _, s := range d.seqs {
		seq := pgx.Identifier{schema, s.name}.Sanitize()
		col := pgx.Identifier{s.column}.Sanitize()
		stmts := []string{
			"CREATE SEQUENCE " + seq + " AS " + s.as + " OWNED BY " + d.target + "." + col,
			"ALTER TABLE " + d.target + " ALTER COLUMN " + col + " SET DEFAULT nextval(" + quoteLiteral(seq) + "::regclass)",
			// The next value is after the restored rows' highest id and,
			// when the source's sequence is in this database (a restore
			// beside the source), after the source's too: rows copied back
			// into a shared table never collide with newer ones.
			"SELECT setval(" + quoteLiteral(seq) + "::regclass, greatest(m, 1), m >= 1) FROM (SELECT greatest(coalesce(max(" + col + ")::bigint, 0), coalesce(" + sourceLastValue(s) + ", 0)) AS m FROM " + d.target + ") x",
		}
		for _, sql := range stmts {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("sequence for %s.%s: %w", d.target, col, err)
			}
		}
	}
	if err := setDefaults(ctx, tx, d); err != nil {
		return err
	}
	d.created = true
	return nil
}

// indexMethods are the built-in index access methods a restore recreates.
var indexMethods = map[string]bool{"btree": true, "hash": true, "gist": true, "gin": true, "brin": true, "spgist": true}

// nextvalRE finds the sequence of a serial column's default, as the
// catalog prints it with an empty search path.
var nextvalRE = regexp.MustCompile(`^nextval\('((?:[^']|'')+)'::regclass\)$`)

// sourceLastValue is an SQL expression for the last value of the source
// column's sequence in the target database, NULL when it is not there.
func sourceLastValue(s seqDDL) string {
	if s.source == "" {
		return "NULL::bigint"
	}
	seq := "to_regclass(" + quoteLiteral(s.source) + ")"
	if s.identity {
		seq = "CASE WHEN to_regclass(" + quoteLiteral(s.source) + ") IS NOT NULL THEN pg_get_serial_sequence(" + quoteLiteral(s.source) + ", " + quoteLiteral(s.column) + ")::regclass END"
	}
	return "(SELECT pg_sequence_last_value(r) FROM (SELECT " + seq + " AS r) q WHERE r IS NOT NULL)"
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
