package capture_test

import (
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/schemas"
)

// waitConfirmed waits until the slot is confirmed at or past lsn: a
// capture started after it does not see the changes before lsn again.
func (e *env) waitConfirmed(lsn schemas.LSN) {
	e.t.Helper()
	waitFor(e.t, 30*time.Second, "the slot confirmed past "+lsn.String(), func() bool {
		got := e.query(`SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = $1`, e.cfg.Slot)
		l, err := schemas.ParseLSN(got[0])
		return err == nil && l >= lsn
	})
}

// TestPoolTruncate truncates shared pool tables (single, several in one
// statement, CASCADE through a foreign key, RESTART IDENTITY), also inside
// a transaction between inserts and after a capture restart that only the
// archive remembers the tenants of. Every tenant restores, by LSN and by
// time, to exactly the source's rows before, between and after: truncated
// rows never come back, rows written after the truncate do.
func TestPoolTruncate(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Pool})
	e.exec(`CREATE TABLE public.t1 (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
		CREATE TABLE public.t2 (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
		CREATE TABLE public.parent (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
		CREATE TABLE public.child (tenant_id text NOT NULL, id int NOT NULL, pid int NOT NULL, PRIMARY KEY (tenant_id, id),
			FOREIGN KEY (tenant_id, pid) REFERENCES public.parent);
		CREATE TABLE public.serial_t (tenant_id text NOT NULL, id serial, v text, PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.t1 SELECT t, i, t || i FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 20) i;
		INSERT INTO public.t2 SELECT t, i, t || i FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 10) i;
		INSERT INTO public.parent SELECT t, i FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 5) i;
		INSERT INTO public.child SELECT t, i, 1 + i % 5 FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 10) i;
		INSERT INTO public.serial_t (tenant_id, v) SELECT t, 'x' FROM unnest(ARRAY['a', 'b', 'a']) t, generate_series(1, 4) i`)
	tables := []table{{"public", "t1", "tenant_id"}, {"public", "t2", "tenant_id"}, {"public", "parent", "tenant_id"},
		{"public", "child", "tenant_id"}, {"public", "serial_t", "tenant_id"}}
	tenants := tenantsOf(tables, "a", "b", "c")

	p := e.start()
	e.waitBaseline()
	var cps []stateCP
	cps = append(cps, e.state("snapshot", tenants))

	// Tenant c appears after the snapshot.
	e.exec(`INSERT INTO public.t1 SELECT 'c', i, 'c' FROM generate_series(1, 7) i`)
	e.exec(`INSERT INTO public.t1 VALUES ('a', 100, 'late')`)
	cps = append(cps, e.state("before truncate", tenants))

	e.exec(`TRUNCATE public.t1`)
	cps = append(cps, e.state("single truncate", tenants))

	// Rows before the truncate in its own transaction go, rows after it stay.
	e.exec(`BEGIN;
		INSERT INTO public.t1 VALUES ('a', 1, 'gone'), ('c', 1, 'gone');
		INSERT INTO public.t2 VALUES ('c', 1, 'gone');
		TRUNCATE public.t1, public.t2;
		INSERT INTO public.t1 VALUES ('b', 1, 'stays'), ('c', 2, 'stays');
		INSERT INTO public.t2 VALUES ('c', 3, 'stays'), ('a', 3, 'stays');
		COMMIT`)
	cps = append(cps, e.state("multi-table truncate between inserts", tenants))
	e.exec(`INSERT INTO public.t2 SELECT 'c', i, 'c later' FROM generate_series(10, 14) i`)
	cps = append(cps, e.state("after the transaction", tenants))

	// After a restart, tenant c's rows of t2 are known only to the archive.
	e.waitConfirmed(cps[len(cps)-1].LSN)
	p.Stop(t)
	e.exec(`INSERT INTO public.parent VALUES ('c', 1); INSERT INTO public.child VALUES ('c', 1, 1)`)
	p = e.start()
	e.exec(`TRUNCATE public.t2`)
	cps = append(cps, e.state("truncate after restart", tenants))

	// CASCADE reaches the referencing table; both are in the message.
	e.exec(`TRUNCATE public.parent CASCADE`)
	e.exec(`INSERT INTO public.parent VALUES ('b', 9); INSERT INTO public.child VALUES ('b', 9, 9)`)
	cps = append(cps, e.state("cascade", tenants))

	// RESTART IDENTITY: the ids start again and the new rows reuse them.
	e.exec(`TRUNCATE public.serial_t RESTART IDENTITY`)
	e.exec(`INSERT INTO public.serial_t (tenant_id, v) VALUES ('a', 'new'), ('c', 'new'), ('a', 'new')`)
	cps = append(cps, e.state("restart identity", tenants))
	if got := e.query(`SELECT string_agg(id::text, ',' ORDER BY id) FROM public.serial_t`); got[0] != "1,2,3" {
		t.Fatalf("ids after RESTART IDENTITY: %s", got[0])
	}

	for _, cp := range cps {
		e.verifyState(cp)
	}
	p.Stop(t)
}
