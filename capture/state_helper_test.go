package capture_test

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// tableState is one tenant's slice of a table at one moment: its content
// checksum and its shape (columns with types, primary key). A table that
// does not exist has Exists false.
type tableState struct {
	Exists  bool
	Sum     pgcheck.Sum
	Columns string // "name type, ..." in column order
	PKey    string // primary key columns, in key order
	Indexes string // other indexes: "[unique ]method (columns)", sorted
}

// stateCP is what some tenants' tables looked like at one moment, with the
// WAL insert position and the time right after it.
type stateCP struct {
	Name   string
	LSN    schemas.LSN
	Time   time.Time
	Tables map[string]map[string]tableState // tenant → "schema.table" → state
}

// shapeSQL describes the relation $1 (quoted, qualified): whether it
// exists, its columns with types, its primary key, its other indexes.
const shapeSQL = `SELECT to_regclass($1) IS NOT NULL,
	coalesce((SELECT string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
		FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped), ''),
	coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
		FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord), pg_attribute a
		WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND a.attrelid = i.indrelid AND a.attnum = k.attnum), ''),
	coalesce((SELECT string_agg(d, '; ' ORDER BY d) FROM (
		SELECT CASE WHEN i.indisunique THEN 'unique ' ELSE '' END || am.amname || ' (' ||
			(SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) || ')' AS d
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
		WHERE i.indrelid = to_regclass($1) AND NOT i.indisprimary) x), '')`

// state records the tenants' tables (each tenant's rows of a pool table,
// every row of a bridge table); the caller must not write concurrently.
func (e *env) state(name string, tenants map[string][]table) stateCP {
	e.t.Helper()
	ctx := e.t.Context()
	cp := stateCP{Name: name, Tables: map[string]map[string]tableState{}}
	var lsn string
	if err := e.pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, clock_timestamp()").Scan(&lsn, &cp.Time); err != nil {
		e.t.Fatal(err)
	}
	l, err := schemas.ParseLSN(lsn)
	if err != nil {
		e.t.Fatal(err)
	}
	cp.LSN = l
	for tenant, tables := range tenants {
		cp.Tables[tenant] = map[string]tableState{}
		for _, tb := range tables {
			rel := pgx.Identifier{tb.Schema, tb.Name}.Sanitize()
			var st tableState
			if err := e.pool.QueryRow(ctx, shapeSQL, rel).Scan(&st.Exists, &st.Columns, &st.PKey, &st.Indexes); err != nil {
				e.t.Fatal(err)
			}
			if st.Exists {
				if st.Sum, err = pgcheck.Table(ctx, e.pool, tb.Schema, tb.Name, tb.TenantColumn, tenant); err != nil {
					e.t.Fatal(err)
				}
			}
			cp.Tables[tenant][tb.qualified()] = st
		}
	}
	return cp
}

// step records the tenants' tables as checkpoint name, appends it to cps
// and waits until the tenants in wait (all of tenants when none) are
// restorable at it: capture has archived everything before the next DDL.
func (e *env) step(cps *[]stateCP, name string, tenants map[string][]table, wait ...string) {
	e.t.Helper()
	cp := e.state(name, tenants)
	*cps = append(*cps, cp)
	if len(wait) == 0 {
		for tenant := range tenants {
			wait = append(wait, tenant)
		}
	}
	for _, tenant := range wait {
		e.waitRestorable(tenant, cp.LSN, cp.Time)
	}
}

// verifyState restores every tenant of cp by LSN and by time and compares
// each table's rows and shape with the recorded ones. A table that existed
// but held none of the tenant's rows may be absent from the restore; one
// with rows must have the recorded columns and primary key.
func (e *env) verifyState(cp stateCP) {
	e.t.Helper()
	for tenant, want := range cp.Tables {
		e.waitRestorable(tenant, cp.LSN, cp.Time)
		for _, target := range []replayer.Target{{LSN: cp.LSN}, {Time: cp.Time}} {
			e.compareState(cp.Name, tenant, target, want)
		}
	}
}

// waitRestorable waits until tenant can be restored at lsn and at at.
func (e *env) waitRestorable(tenant string, lsn schemas.LSN, at time.Time) {
	e.t.Helper()
	waitFor(e.t, 30*time.Second, fmt.Sprintf("tenant %q archived up to %s and %s", tenant, lsn, at), func() bool {
		ten, err := catalog.LoadTenant(e.t.Context(), e.store, schemas.TenantID(tenant))
		return err == nil && ten.Range.ToLSN >= lsn && !ten.Range.ToTime.Before(at)
	})
}

func (e *env) compareState(name, tenant string, target replayer.Target, want map[string]tableState) {
	e.t.Helper()
	ctx := e.t.Context()
	restored, err := e.restore(tenant, target)
	if err != nil {
		e.t.Errorf("%s: %v", name, err)
		return
	}
	for tname, w := range want {
		rel, ok := restored[tname]
		delete(restored, tname)
		if !ok {
			if w.Exists && w.Sum.Rows > 0 {
				e.t.Errorf("%s: tenant %q at %s: table %s with %s was not restored", name, tenant, target, tname, w.Sum)
			}
			continue
		}
		if !w.Exists {
			e.t.Errorf("%s: tenant %q at %s: restored table %s, which did not exist", name, tenant, target, tname)
			continue
		}
		var got tableState
		if err := e.rpool.QueryRow(ctx, shapeSQL, rel).Scan(&got.Exists, &got.Columns, &got.PKey, &got.Indexes); err != nil {
			e.t.Fatal(err)
		}
		if got.Sum, err = pgcheck.Relation(ctx, e.rpool, rel, ""); err != nil {
			e.t.Fatal(err)
		}
		if got != w {
			e.t.Errorf("%s: tenant %q at %s: table %s:\n restored %+v\n   source %+v", name, tenant, target, tname, got, w)
		}
	}
	for tname := range restored {
		e.t.Errorf("%s: tenant %q at %s: restored an unexpected table %s", name, tenant, target, tname)
	}
}

// tenantsOf lists the same tables for every tenant.
func tenantsOf(tables []table, tenants ...string) map[string][]table {
	out := map[string][]table{}
	for _, t := range tenants {
		out[t] = tables
	}
	return out
}
