package replayer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantwal/tenantwal/schemas"
)

// A restore recreates, after each table's rows are loaded: its indexes
// (from pg_get_indexdef's key list, INCLUDE, WITH and WHERE as capture
// recorded them), its CHECK, UNIQUE and EXCLUDE constraints (from
// pg_get_constraintdef), and its column defaults; once every table is
// loaded, its foreign keys to tables of the same restore, pointed at their
// restored copies.
//
// Archived definitions were printed with a catalog-only search path, so
// anything not built in is schema-qualified and names objects of the
// source database. What the restore database lacks (a function, a
// collation, an operator class, a sequence, a referenced table outside
// the restore) is not recreated and is logged with its definition; so is
// a constraint the restored rows do not satisfy (a CHECK calling a
// function whose result changed, a foreign key to another tenant's row).
// Every definition runs as exactly one statement (the extended protocol)
// and must start as its kind does; the archive is authenticated per tenant.

// ddlNote is a definition a restore did not recreate (skipped), or
// recreated differently from the source (a default drawing from a copy of
// its sequence).
type ddlNote struct {
	table, what, reason, sql string
	skipped                  bool
}

func (d *tableDDL) note(what, reason, sql string, skipped bool) {
	d.notes = append(d.notes, ddlNote{table: d.plan.Name, what: what, reason: reason, sql: sql, skipped: skipped})
}

// nameIndexes chooses the target names of the indexes recorded with their
// definition and of the UNIQUE and EXCLUDE constraints (their indexes
// share the schema's namespace with tables and sequences): the source
// name, made unique. CHECK and FOREIGN KEY constraints keep their names,
// which only need to be unique per table.
func nameIndexes(d *tableDDL, used map[string]bool) {
	ts := d.plan.Schema
	d.indexes = make([]string, len(ts.Indexes))
	for i, ix := range ts.Indexes {
		if ix.Def == "" {
			continue
		}
		base := ix.Name
		if base == "" {
			base = d.name + "_idx"
		}
		d.indexes[i] = uniqueName(base, used)
	}
	d.cons = make([]string, len(ts.Constraints))
	for i, c := range ts.Constraints {
		if c.Type == "u" || c.Type == "x" {
			d.cons[i] = uniqueName(c.Name, used)
		} else {
			d.cons[i] = c.Name
		}
	}
}

// constraintPrefix is how pg_get_constraintdef starts for each kind a
// table's own definition recreates.
var constraintPrefix = map[string]string{"c": "CHECK (", "u": "UNIQUE ", "x": "EXCLUDE "}

// addIndexesAndConstraints recreates the table's indexes recorded with
// their definition and its CHECK, UNIQUE and EXCLUDE constraints.
func addIndexesAndConstraints(ctx context.Context, tx pgx.Tx, d *tableDDL) error {
	ts := d.plan.Schema
	for i, ix := range ts.Indexes {
		if ix.Def == "" {
			continue
		}
		what := fmt.Sprintf("index %q", ix.Name)
		if !indexMethods[ix.Method] || !strings.HasPrefix(ix.Def, "(") {
			return fmt.Errorf("table %s: %s: method %q with definition %q is not one this restore recreates", d.plan.Name, what, ix.Method, ix.Def)
		}
		sql := "CREATE INDEX " + pgx.Identifier{d.indexes[i]}.Sanitize() + " ON " + d.target + " USING " + ix.Method + " " + ix.Def
		if ix.Unique {
			sql = "CREATE UNIQUE" + strings.TrimPrefix(sql, "CREATE")
		}
		if err := d.optional(ctx, tx, what, sql); err != nil {
			return err
		}
	}
	for i, c := range ts.Constraints {
		if c.Type == "f" {
			continue // finishSchema, once every table is loaded
		}
		what := fmt.Sprintf("constraint %q", c.Name)
		prefix, ok := constraintPrefix[c.Type]
		if !ok || !strings.HasPrefix(c.Def, prefix) {
			return fmt.Errorf("table %s: %s of type %q with definition %q is not one this restore recreates", d.plan.Name, what, c.Type, c.Def)
		}
		sql := "ALTER TABLE " + d.target + " ADD CONSTRAINT " + pgx.Identifier{d.cons[i]}.Sanitize() + " " + c.Def
		if err := d.optional(ctx, tx, what, sql); err != nil {
			return err
		}
	}
	return nil
}

// seqCopies are the sequences a restore creates in its schema for column
// defaults that call nextval on a sequence of the source (other than the
// serial and identity columns' own, see seqDDL): source regclass text →
// name in the target schema, and which exist yet.
type seqCopies struct {
	schema  string
	names   map[string]string
	created map[string]bool
}

// nameSeqCopies names the copies of the sequences d's column defaults
// draw from.
func nameSeqCopies(d *tableDDL, copies *seqCopies, used map[string]bool) {
	d.copies = copies
	for _, c := range defaultColumns(d) {
		for _, m := range nextvalAnyRE.FindAllStringSubmatch(c.Default, -1) {
			src := strings.ReplaceAll(m[1], "''", "'")
			if copies.names[src] == "" {
				base := src[strings.LastIndex(src, ".")+1:]
				copies.names[src] = uniqueName(strings.ReplaceAll(strings.Trim(base, `"`), `""`, `"`), used)
			}
		}
	}
}

// defaultColumns are the columns whose default setDefaults sets: all with
// one but identity columns and those given their own sequence.
func defaultColumns(d *tableDDL) []schemas.Column {
	own := map[string]bool{}
	for _, s := range d.seqs {
		own[s.column] = true
	}
	var out []schemas.Column
	for _, c := range d.plan.Schema.Columns {
		if c.Default != "" && c.Identity == 0 && !own[c.Name] {
			out = append(out, c)
		}
	}
	return out
}

// setDefaults sets the column defaults other than those of the columns
// given their own sequence. A default that calls nextval on a sequence
// draws from a copy of it in the target schema instead (never from the
// source's: that would make the restored table depend on it), created on
// first use and set past the source's last value when the restore
// database holds the source sequence (a restore beside the source).
func setDefaults(ctx context.Context, tx pgx.Tx, d *tableDDL) error {
	for _, c := range defaultColumns(d) {
		what := fmt.Sprintf("default of column %q", c.Name)
		var err error
		expr := nextvalAnyRE.ReplaceAllStringFunc(c.Default, func(m string) string {
			src := strings.ReplaceAll(nextvalAnyRE.FindStringSubmatch(m)[1], "''", "'")
			seq := pgx.Identifier{d.copies.schema, d.copies.names[src]}.Sanitize()
			if !d.copies.created[src] && err == nil {
				err = copySequence(ctx, tx, src, seq)
				d.copies.created[src] = err == nil
				d.note(what, "draws from "+seq+", a copy of the source's sequence "+src, "CREATE SEQUENCE "+seq+" AS bigint", false)
			}
			return "nextval(" + quoteLiteral(seq) + "::regclass)"
		})
		if err != nil {
			return fmt.Errorf("table %s: %s: %w", d.plan.Name, what, err)
		}
		sql := "ALTER TABLE " + d.target + " ALTER COLUMN " + pgx.Identifier{c.Name}.Sanitize() + " SET DEFAULT " + expr
		if err := d.optional(ctx, tx, what, sql); err != nil {
			return err
		}
	}
	return nil
}

// copySequence creates seq (quoted, qualified) as a bigint sequence that
// continues after the source sequence src's last value when the restore
// database has src, else starts at 1.
func copySequence(ctx context.Context, tx pgx.Tx, src, seq string) error {
	if err := execOne(ctx, tx, "CREATE SEQUENCE "+seq+" AS bigint"); err != nil {
		return fmt.Errorf("create sequence %s: %w", seq, err)
	}
	_, err := tx.Exec(ctx, "SELECT setval($1::regclass, m, true) FROM (SELECT pg_sequence_last_value(to_regclass($2)) AS m) x WHERE m IS NOT NULL", seq, src)
	if err != nil {
		return fmt.Errorf("continue sequence %s after %s: %w", seq, src, err)
	}
	return nil
}

// nextvalAnyRE finds every sequence a default draws from, as the catalog
// prints it with a catalog-only search path.
var nextvalAnyRE = regexp.MustCompile(`nextval\('((?:[^']|'')+)'::regclass\)`)

// skippable are the errors a definition may fail with because of the
// restore database or the restored rows, not the restore: undefined
// function, object (type, collation, operator class), table (sequence),
// schema; rows that violate a foreign key or CHECK; a referenced key left
// out before.
var skippable = map[string]bool{"42883": true, "42704": true, "42P01": true, "3F000": true, "23503": true, "23514": true, "42830": true}

// optional runs sql in a savepoint. A failure listed in skippable is noted
// and leaves the restore going; any other fails it.
func (d *tableDDL) optional(ctx context.Context, tx pgx.Tx, what, sql string) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("table %s: %s: %w", d.plan.Name, what, err)
	}
	err = execOne(ctx, sp, sql)
	if err == nil {
		return sp.Commit(ctx)
	}
	if rerr := sp.Rollback(ctx); rerr != nil {
		return fmt.Errorf("table %s: %s: %w (and rolling back its savepoint: %v)", d.plan.Name, what, err, rerr)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && skippable[pgErr.Code] {
		d.note(what, pgErr.Message, sql, true)
		return nil
	}
	return fmt.Errorf("table %s: %s: %w", d.plan.Name, what, err)
}

// execOne runs sql with the extended protocol, which runs exactly one
// statement: archived definition text cannot append another. (pgx's Exec
// without arguments uses the simple protocol, whatever the query mode.)
func execOne(ctx context.Context, tx pgx.Tx, sql string) error {
	return tx.Conn().PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Read().Err
}

// fkActionsRE is what pg_get_constraintdef prints after a foreign key's
// REFERENCES clause.
var fkActionsRE = func() *regexp.Regexp {
	ident := `(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)`
	action := `(?:CASCADE|RESTRICT|SET NULL|SET DEFAULT)`
	return regexp.MustCompile(`^(?: MATCH (?:FULL|PARTIAL))?(?: ON UPDATE ` + action + `)?(?: ON DELETE ` + action +
		`(?: \(` + ident + `(?:, ` + ident + `)*\))?)?(?: DEFERRABLE)?(?: INITIALLY DEFERRED)?(?: NOT VALID)?$`)
}()

// finishSchema runs once every table is loaded: it adds the foreign keys
// between restored tables, pointed at the restored copies, and logs what
// the restore did not recreate. A foreign key to a table this restore
// does not hold (another tenant's, a shared table, a table without the
// tenant's rows) is left out.
func finishSchema(ctx context.Context, tx pgx.Tx, ddls []*tableDDL, log *slog.Logger) error {
	byName := map[string]*tableDDL{}
	for _, d := range ddls {
		if d.created {
			byName[d.plan.Schema.QualifiedName()] = d
		}
	}
	for _, d := range ddls {
		if !d.created {
			continue
		}
		for i, c := range d.plan.Schema.Constraints {
			if c.Type != "f" {
				continue
			}
			if err := addForeignKey(ctx, tx, d, d.cons[i], c, byName); err != nil {
				return err
			}
		}
	}
	for _, d := range ddls {
		for _, n := range d.notes {
			if n.skipped {
				log.Warn("not recreated in the restored schema", "table", n.table, "object", n.what, "reason", n.reason, "sql", n.sql)
			} else {
				log.Info("recreated differently from the source", "table", n.table, "object", n.what, "reason", n.reason, "sql", n.sql)
			}
		}
		d.notes = nil
	}
	return nil
}

func addForeignKey(ctx context.Context, tx pgx.Tx, d *tableDDL, name string, c schemas.ConstraintDef, byName map[string]*tableDDL) error {
	what := fmt.Sprintf("foreign key %q", c.Name)
	ref := byName[c.RefSchema+"."+c.RefTable]
	if ref == nil {
		d.note(what, fmt.Sprintf("references %s.%s, which this restore does not hold", c.RefSchema, c.RefTable), c.Def, true)
		return nil
	}
	if len(c.Columns) == 0 || len(c.Columns) != len(c.RefColumns) || !fkActionsRE.MatchString(c.Actions) {
		return fmt.Errorf("table %s: %s with definition %q and actions %q is not one this restore recreates", d.plan.Name, what, c.Def, c.Actions)
	}
	cols := make([]string, len(c.Columns))
	for i, col := range c.Columns {
		cols[i] = pgx.Identifier{col}.Sanitize()
	}
	refCols := make([]string, len(c.RefColumns))
	for i, col := range c.RefColumns {
		refCols[i] = pgx.Identifier{col}.Sanitize()
	}
	sql := "ALTER TABLE " + d.target + " ADD CONSTRAINT " + pgx.Identifier{name}.Sanitize() +
		" FOREIGN KEY (" + strings.Join(cols, ", ") + ") REFERENCES " + ref.target + " (" + strings.Join(refCols, ", ") + ")" + c.Actions
	return d.optional(ctx, tx, what, sql)
}
