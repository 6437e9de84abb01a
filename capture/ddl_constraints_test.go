package capture_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestConstraintsAndIndexesRestored gives a bridge tenant's tables and a
// pool table expression, partial, INCLUDE and operator-class indexes,
// UNIQUE (also NULLS NOT DISTINCT), CHECK (also NOT VALID), EXCLUDE and
// FOREIGN KEY constraints (deferrable, ON DELETE SET NULL of some columns,
// self-referencing), column defaults and NOT NULL, then adds and drops
// some of them while capture runs. Restores by LSN and by time at every
// step, into another database, have the source's rows and exactly its
// definitions as pg_constraint, pg_index and pg_attrdef print them, except
// what that database cannot hold, which is logged: a foreign key to a
// table outside the tenant and a CHECK calling a function that exists only
// in the source database. A default drawing from a source sequence draws
// from a copy in the restored schema.
func TestConstraintsAndIndexesRestored(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Mixed})
	e.exec(`CREATE SEQUENCE public.invoice_no;
CREATE FUNCTION public.is_positive(numeric) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT $1 > 0';
CREATE TABLE public.currencies (code text PRIMARY KEY);
INSERT INTO public.currencies VALUES ('EUR'), ('USD');
CREATE SCHEMA tenant_c;
CREATE TABLE tenant_c.customers (
	id int PRIMARY KEY,
	email text NOT NULL,
	tier text NOT NULL DEFAULT 'free' CONSTRAINT tier_known CHECK (tier IN ('free', 'pro')),
	since date DEFAULT current_date,
	region text COLLATE "C",
	CONSTRAINT email_unique UNIQUE (email),
	CONSTRAINT email_shape CHECK (position('@' in email) > 1));
CREATE INDEX customers_lower_email ON tenant_c.customers (lower(email) text_pattern_ops DESC NULLS LAST);
CREATE INDEX customers_pro ON tenant_c.customers (since) INCLUDE (region) WHERE tier = 'pro';
CREATE INDEX "Customers by region" ON tenant_c.customers USING hash (region);
CREATE TABLE tenant_c.orders (
	id bigserial PRIMARY KEY,
	customer_id int NOT NULL REFERENCES tenant_c.customers ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
	amount numeric(10,2) NOT NULL CHECK (amount >= 0),
	currency text REFERENCES public.currencies,
	during tstzrange,
	invoice text DEFAULT 'INV-' || nextval('public.invoice_no'),
	total numeric GENERATED ALWAYS AS (amount * 2) STORED NOT NULL,
	CONSTRAINT orders_positive CHECK (public.is_positive(amount + 1)),
	CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&) WHERE (customer_id > 0),
	CONSTRAINT one_invoice UNIQUE NULLS NOT DISTINCT (customer_id, invoice));
CREATE TABLE public.items (
	tenant_id text NOT NULL, id int NOT NULL, parent int, v text CHECK (v <> ''),
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, parent) REFERENCES public.items (tenant_id, id) ON UPDATE CASCADE ON DELETE SET NULL (parent));
INSERT INTO tenant_c.customers VALUES (1, 'a@x', 'free', '2026-01-01', 'eu'), (2, 'b@x', 'pro', '2026-02-01', 'us');
INSERT INTO tenant_c.orders (customer_id, amount, currency, during) VALUES
	(1, 10, 'EUR', '[2026-01-01, 2026-01-02)'), (2, 20.5, NULL, '[2026-01-03, 2026-01-04)');
INSERT INTO public.items VALUES ('a', 1, NULL, 'root'), ('a', 2, 1, 'child'), ('b', 1, NULL, 'b root')`)
	customers, orders, items := table{"tenant_c", "customers", ""}, table{"tenant_c", "orders", ""}, table{"public", "items", "tenant_id"}
	tenants := map[string][]table{"c": {customers, orders}, "a": {items}, "b": {items}}
	// What the restore database cannot hold: these are logged, not recreated.
	skipped := map[string][]skip{
		"tenant_c.orders": {
			{`constraint orders_currency_fkey FOREIGN KEY (currency) REFERENCES public.currencies(code)`, "orders_currency_fkey"},
			{`constraint orders_positive CHECK (public.is_positive((amount + (1)::numeric)))`, "orders_positive"},
		},
	}
	// A default drawing from a sequence of the source draws from a copy
	// in the restored schema.
	rewritten := map[string]string{
		`default invoice ('INV-'::text || nextval('public.invoice_no'::regclass))`: `default invoice ('INV-'::text || nextval('invoice_no'::regclass))`,
	}

	p := e.start()
	e.waitBaseline()
	var cps []defsCP
	step := func(name string) {
		cp := e.defsState(name, tenants)
		for tenant := range tenants {
			e.waitRestorable(tenant, cp.LSN, cp.Time)
		}
		cps = append(cps, cp)
	}
	step("snapshot")

	e.exec(`ALTER TABLE tenant_c.orders ADD CONSTRAINT big_enough CHECK (amount < 1000000) NOT VALID;
CREATE UNIQUE INDEX orders_invoice ON tenant_c.orders ((lower(invoice))) WHERE invoice IS NOT NULL;
INSERT INTO tenant_c.orders (customer_id, amount, during) VALUES (1, 3, '[2026-03-01, 2026-03-02)')`)
	step("check and unique expression index added")

	e.exec(`ALTER TABLE tenant_c.customers DROP CONSTRAINT tier_known, ALTER COLUMN tier SET DEFAULT 'pro', ALTER COLUMN since DROP DEFAULT;
DROP INDEX tenant_c.customers_pro;
ALTER TABLE tenant_c.orders DROP CONSTRAINT orders_customer_id_fkey,
	ADD CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES tenant_c.customers (id) MATCH FULL ON UPDATE RESTRICT;
INSERT INTO tenant_c.customers (id, email, tier) VALUES (3, 'c@x', 'gold');
UPDATE tenant_c.orders SET amount = amount + 1 WHERE id = 1`)
	step("constraints dropped and replaced")

	e.exec(`ALTER TABLE public.items ADD CONSTRAINT v_short CHECK (length(v) < 100), ALTER COLUMN v SET DEFAULT 'none';
CREATE INDEX items_upper_v ON public.items (tenant_id, upper(v)) WITH (fillfactor = 70);
INSERT INTO public.items (tenant_id, id, parent) VALUES ('b', 2, 1);
DELETE FROM public.items WHERE tenant_id = 'a' AND id = 1`)
	step("pool table constraint and index")

	for _, cp := range cps {
		for tenant := range tenants {
			for _, target := range []replayer.Target{{LSN: cp.LSN}, {Time: cp.Time}} {
				e.compareDefs(cp, tenant, target, skipped, rewritten)
			}
		}
	}
	p.Stop(t)
}

// defsCP is the tenants' rows and every table's definitions at one moment.
type defsCP struct {
	Name string
	LSN  schemas.LSN
	Time time.Time
	Sums map[string]map[string]pgcheck.Sum // tenant → "schema.table" → rows
	Defs map[string][]string               // "schema.table" → tableDefs
}

func (e *env) defsState(name string, tenants map[string][]table) defsCP {
	e.t.Helper()
	ctx := e.t.Context()
	cp := defsCP{Name: name, Sums: map[string]map[string]pgcheck.Sum{}, Defs: map[string][]string{}}
	var lsn string
	if err := e.pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, clock_timestamp()").Scan(&lsn, &cp.Time); err != nil {
		e.t.Fatal(err)
	}
	var err error
	if cp.LSN, err = schemas.ParseLSN(lsn); err != nil {
		e.t.Fatal(err)
	}
	for tenant, tables := range tenants {
		cp.Sums[tenant] = map[string]pgcheck.Sum{}
		for _, tb := range tables {
			if cp.Sums[tenant][tb.qualified()], err = pgcheck.Table(ctx, e.pool, tb.Schema, tb.Name, tb.TenantColumn, tenant); err != nil {
				e.t.Fatal(err)
			}
			cp.Defs[tb.qualified()] = tableDefs(e.t, e.pool, tb.Schema, tb.Name)
		}
	}
	return cp
}

// tableDefsSQL lists a table's definitions as the catalog prints them,
// with the table's own schema as the search path (so that names in it
// print unqualified, the same for the source and a restored copy):
// constraints by name (the primary key's name is the restore's choice),
// indexes other than the constraints' by name, defaults, generated
// columns and NOT NULL.
const tableDefsSQL = `
SELECT CASE WHEN contype = 'p' THEN 'primary key ' ELSE 'constraint ' || conname || ' ' END || pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid = $1::regclass
UNION ALL
SELECT 'index ' || c.relname || ' ' || substring(pg_get_indexdef(i.indexrelid) from '^CREATE (?:UNIQUE )?INDEX') || ' ' ||
       substring(pg_get_indexdef(i.indexrelid) from ' USING .*$')
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = $1::regclass AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
UNION ALL
SELECT CASE WHEN a.attgenerated = '' THEN 'default ' ELSE 'generated ' END || a.attname || ' ' || pg_get_expr(d.adbin, d.adrelid)
FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = $1::regclass
UNION ALL
SELECT 'column ' || attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END ||
       CASE WHEN attcollation <> 0 AND attcollation <> 100 THEN ' collate ' || attcollation::regcollation::text ELSE '' END
FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`

// tableDefs returns schema.table's definitions, sorted.
func tableDefs(t *testing.T, q interface {
	Begin(context.Context) (pgx.Tx, error)
}, schema, table string) []string {
	t.Helper()
	ctx := t.Context()
	tx, err := q.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, tableDefsSQL, pgx.Identifier{schema, table}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// compareDefs restores tenant at target into another database and
// compares every table's rows and definitions with cp's, less the skipped
// ones, which the restore must have logged.
func (e *env) compareDefs(cp defsCP, tenant string, target replayer.Target, skipped map[string][]skip, rewritten map[string]string) {
	e.t.Helper()
	ctx := e.t.Context()
	var logs lockedBuffer
	schema, restored, err := e.restoreLogged(tenant, target, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		e.t.Errorf("%s: %v", cp.Name, err)
		return
	}
	for name, want := range cp.Sums[tenant] {
		rel, ok := restored[name]
		if !ok {
			if want.Rows > 0 {
				e.t.Errorf("%s: tenant %q at %s: table %s with %s not restored", cp.Name, tenant, target, name, want)
			}
			continue
		}
		got, err := pgcheck.Relation(ctx, e.rpool, rel, "")
		if err != nil {
			e.t.Fatal(err)
		}
		if got != want {
			e.t.Errorf("%s: tenant %q at %s: table %s: restored %s, source had %s", cp.Name, tenant, target, name, got, want)
		}
		_, tname, _ := strings.Cut(name, ".")
		gotDefs := tableDefs(e.t, e.rpool, schema, tname)
		wantDefs := slices.DeleteFunc(slices.Clone(cp.Defs[name]), func(d string) bool {
			return slices.ContainsFunc(skipped[name], func(s skip) bool { return s.def == d })
		})
		for i, d := range wantDefs {
			if r, ok := rewritten[d]; ok {
				wantDefs[i] = r
			}
		}
		slices.Sort(wantDefs)
		if !slices.Equal(gotDefs, wantDefs) {
			e.t.Errorf("%s: tenant %q at %s: table %s definitions:\n restored %s\n   source %s\nrestore log:\n%s", cp.Name, tenant, target, name,
				strings.Join(gotDefs, "\n          "), strings.Join(wantDefs, "\n          "), logs.String())
		}
		for _, s := range skipped[name] {
			if !slices.Contains(cp.Defs[name], s.def) {
				e.t.Errorf("%s: table %s: the source has no %q (the test's list is stale)", cp.Name, name, s.def)
			}
			if !slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(l string) bool {
				return strings.Contains(l, "not recreated") && strings.Contains(l, s.name)
			}) {
				e.t.Errorf("%s: tenant %q at %s: table %s: no log says %s was not recreated:\n%s", cp.Name, tenant, target, name, s.name, logs.String())
			}
		}
	}
}

// skip is a source definition a restore into another database leaves
// out, and a name its log line holds.
type skip struct{ def, name string }

// lockedBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
