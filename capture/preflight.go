package capture

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/capture/route"
)

// Problem is one failed preflight check with the exact fix.
type Problem struct {
	What string
	Fix  string
}

// PreflightError lists every failed check; nothing was created.
type PreflightError struct{ Problems []Problem }

func (e *PreflightError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the source is not ready for tenantwal (%d problem(s)); nothing was created:", len(e.Problems))
	for i, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %d. %s\n     fix: %s", i+1, p.What, p.Fix)
	}
	return b.String()
}

// Preflight checks the source for everything capture needs and returns a
// *PreflightError listing each problem with its fix. It creates nothing.
func Preflight(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	conn, err := connectSQL(ctx, cfg.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return preflight(ctx, conn, cfg)
}

func preflight(ctx context.Context, conn *pgx.Conn, cfg Config) error {
	var probs []Problem
	var walLevel string
	var slots, usedSlots, senders, usedSenders int
	var slotExists bool
	err := conn.QueryRow(ctx, `
SELECT current_setting('wal_level'),
       current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots)::int,
       current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_stat_replication)::int,
       EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, cfg.Slot).
		Scan(&walLevel, &slots, &usedSlots, &senders, &usedSenders, &slotExists)
	if err != nil {
		return fmt.Errorf("preflight: read server settings: %w", err)
	}
	if walLevel != "logical" {
		probs = append(probs, Problem{
			What: fmt.Sprintf("wal_level is %q; logical decoding needs \"logical\"", walLevel),
			Fix:  "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
		})
	}
	if !slotExists && usedSlots >= slots {
		probs = append(probs, Problem{
			What: fmt.Sprintf("all %d replication slots are in use", slots),
			Fix:  fmt.Sprintf("ALTER SYSTEM SET max_replication_slots = %d; then restart PostgreSQL (or drop an unused slot)", slots+4),
		})
	}
	if usedSenders >= senders {
		probs = append(probs, Problem{
			What: fmt.Sprintf("all %d WAL senders are in use", senders),
			Fix:  fmt.Sprintf("ALTER SYSTEM SET max_wal_senders = %d; then restart PostgreSQL", senders+4),
		})
	}
	tables, err := candidateTables(ctx, conn, cfg)
	if err != nil {
		return err
	}
	r, err := route.New(cfg.Route)
	if err != nil {
		return err
	}
	for _, t := range tables {
		ts, err := loadTable(ctx, conn, t.RelID)
		if err != nil {
			return err
		}
		// Excluded tables are checked too: the publication still publishes
		// them, so without a replica identity the customer's own UPDATE and
		// DELETE on them would fail (PITFALLS 5).
		rt := r.Route(ts)
		probs = append(probs, identityProblems(t, ts.ReplicaIdentity, ts.PrimaryKey, ts.KeyNames(), rt)...)
	}
	if len(probs) > 0 {
		return &PreflightError{Problems: probs}
	}
	return nil
}

// identityProblems checks that UPDATE and DELETE on the table work and can
// be routed to a tenant (PITFALLS 5).
func identityProblems(t publishedTable, ident byte, pk, key []string, rt route.Table) []Problem {
	name := t.qualified()
	switch {
	case ident == 'n':
		return []Problem{{
			What: fmt.Sprintf("table %s has REPLICA IDENTITY NOTHING: UPDATE and DELETE on it would fail once published", name),
			Fix:  fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL;", name),
		}}
	case ident == 'd' && len(pk) == 0:
		return []Problem{{
			What: fmt.Sprintf("table %s has no primary key and REPLICA IDENTITY DEFAULT: UPDATE and DELETE on it would fail once published", name),
			Fix:  fmt.Sprintf("add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL;", name),
		}}
	}
	if rt.Column >= 0 && ident != 'f' && !contains(key, rt.ColumnName) {
		return []Problem{{
			What: fmt.Sprintf("table %s: the tenant column %s is not in the replica identity (%s), so a DELETE could not be routed to its tenant",
				name, quoteIdent(rt.ColumnName), strings.Join(key, ", ")),
			Fix: tenantIdentityFix(t, rt.ColumnName, key),
		}}
	}
	return nil
}

// tenantIdentityFix is the fix for a replica identity that lacks the tenant
// column: a full identity, or a unique index of the tenant column and the
// current identity columns used as the replica identity.
func tenantIdentityFix(t publishedTable, tenantCol string, key []string) string {
	name := t.qualified()
	cols := []string{quoteIdent(tenantCol)}
	for _, k := range key {
		cols = append(cols, quoteIdent(k))
	}
	index := t.Name
	if len(index) > 50 {
		index = index[:50]
	}
	index = quoteIdent(index + "_tenant_ident")
	return fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL; or use a unique index that includes the tenant column "+
		"(its columns must be NOT NULL): CREATE UNIQUE INDEX %s ON %s (%s); ALTER TABLE %s REPLICA IDENTITY USING INDEX %s;",
		name, index, name, strings.Join(cols, ", "), name, index)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// candidateTables returns the publication's tables if it exists, else the
// tables Init would publish.
func candidateTables(ctx context.Context, conn *pgx.Conn, cfg Config) ([]publishedTable, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, cfg.Publication).Scan(&exists); err != nil {
		return nil, fmt.Errorf("preflight: read publications: %w", err)
	}
	if exists {
		return publishedTables(ctx, conn, cfg.Publication)
	}
	rows, err := conn.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
ORDER BY 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("preflight: list tables: %w", err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, t := range cfg.Tables {
		want[t] = true
	}
	found := map[string]bool{}
	var out []publishedTable
	for rows.Next() {
		var p publishedTable
		var kind string
		if err := rows.Scan(&p.RelID, &p.Schema, &p.Name, &kind); err != nil {
			return nil, err
		}
		p.RelKind = kind[0]
		if len(cfg.Tables) == 0 || want[p.Schema+"."+p.Name] {
			found[p.Schema+"."+p.Name] = true
			out = append(out, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, t := range cfg.Tables {
		if !found[t] {
			return nil, fmt.Errorf("table %q named in --tables does not exist (give schema.table)", t)
		}
	}
	return out, nil
}

// Init runs the preflight, creates the publication if it is missing and,
// unless cfg.NoDDLTrigger, installs the DDL event triggers where the role
// may (ddl.go). The slot is created by capture's first start, which also
// takes the initial snapshot from it. Of opts, only WithLogger applies.
func Init(ctx context.Context, cfg Config, opts ...Option) error {
	c := &Capture{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(c)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	conn, err := connectSQL(ctx, cfg.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := preflight(ctx, conn, cfg); err != nil {
		return err
	}
	if err := ensurePublication(ctx, conn, cfg); err != nil {
		return err
	}
	if cfg.NoDDLTrigger {
		return nil
	}
	return ensureDDLTrigger(ctx, conn, c.log)
}

func ensurePublication(ctx context.Context, conn *pgx.Conn, cfg Config) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, cfg.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("read publications: %w", err)
	}
	if exists {
		return nil
	}
	target := "FOR ALL TABLES"
	if len(cfg.Tables) > 0 {
		var names []string
		for _, t := range cfg.Tables {
			s, n, ok := strings.Cut(t, ".")
			if !ok {
				return fmt.Errorf("table %q: give it as schema.table", t)
			}
			names = append(names, quoteIdent(s)+"."+quoteIdent(n))
		}
		target = "FOR TABLE " + strings.Join(names, ", ")
	}
	sql := fmt.Sprintf("CREATE PUBLICATION %s %s WITH (publish_via_partition_root = true)", quoteIdent(cfg.Publication), target)
	if _, err := conn.Exec(ctx, sql); err != nil {
		var hint string
		if strings.Contains(err.Error(), "must be superuser") {
			hint = " (FOR ALL TABLES needs a superuser: run `tenantwal init` once as one, or pass --tables)"
		}
		return fmt.Errorf("create publication: %s: %w%s", sql, err, hint)
	}
	return nil
}
