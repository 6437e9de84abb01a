package capture_test

import (
	"testing"

	"github.com/tenantwal/tenantwal/capture/route"
)

// TestPartitionedTables archives a partitioned pool table with
// publish_via_partition_root on (one table, the root) and off (one table per
// partition): rows move between partitions, a partition is added and
// attached later, and a partition (via root: the root) is truncated. Restores by LSN and time
// equal the source: the root's rows, or each partition's own rows.
func TestPartitionedTables(t *testing.T) {
	for _, viaRoot := range []bool{true, false} {
		name := "via root"
		if !viaRoot {
			name = "per partition"
		}
		t.Run(name, func(t *testing.T) { testPartitioned(t, viaRoot) })
	}
}

func testPartitioned(t *testing.T, viaRoot bool) {
	e := newEnv(t, route.Config{Model: route.Pool})
	e.exec(`CREATE TABLE public.ev (tenant_id text NOT NULL, id int NOT NULL, region text NOT NULL, v text,
			PRIMARY KEY (tenant_id, id, region)) PARTITION BY LIST (region);
		CREATE TABLE public.ev_eu PARTITION OF public.ev FOR VALUES IN ('eu');
		CREATE TABLE public.ev_us PARTITION OF public.ev FOR VALUES IN ('us')`)
	e.exec(`INSERT INTO public.ev SELECT t, i, (ARRAY['eu', 'us'])[1 + i % 2], t || i FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 10) i`)
	if !viaRoot {
		e.exec(`CREATE PUBLICATION ` + e.cfg.Publication + ` FOR ALL TABLES WITH (publish_via_partition_root = false)`)
	}
	ev := func(name string) table { return table{"public", name, "tenant_id"} }
	tables := []table{ev("ev")}
	if !viaRoot {
		tables = []table{ev("ev_eu"), ev("ev_us"), ev("ev_ap"), ev("ev_sa")}
	}
	tenants := tenantsOf(tables, "a", "b")

	p := e.start()
	e.waitBaseline()
	var cps []stateCP
	cps = append(cps, e.state("snapshot", tenants))

	// Rows move between partitions, alone and with other changes.
	e.exec(`UPDATE public.ev SET region = 'us', v = 'moved' WHERE tenant_id = 'a' AND id = 2`)
	e.exec(`BEGIN;
		UPDATE public.ev SET region = 'eu' WHERE tenant_id = 'b' AND region = 'us';
		UPDATE public.ev SET v = 'stayed' WHERE tenant_id = 'b' AND id = 1;
		DELETE FROM public.ev WHERE tenant_id = 'a' AND id = 4;
		COMMIT`)
	cps = append(cps, e.state("rows moved between partitions", tenants))

	// A partition created later, one attached later, rows moving into both.
	e.exec(`CREATE TABLE public.ev_ap PARTITION OF public.ev FOR VALUES IN ('ap')`)
	e.exec(`CREATE TABLE public.ev_sa (LIKE public.ev INCLUDING ALL);
		ALTER TABLE public.ev ATTACH PARTITION public.ev_sa FOR VALUES IN ('sa')`)
	e.exec(`INSERT INTO public.ev VALUES ('a', 100, 'ap', 'new partition'), ('b', 100, 'sa', 'attached')`)
	e.exec(`UPDATE public.ev SET region = 'ap' WHERE tenant_id = 'b' AND id IN (3, 5)`)
	e.exec(`UPDATE public.ev SET region = 'sa' WHERE tenant_id = 'a' AND id = 1`)
	cps = append(cps, e.state("partitions added later", tenants))

	// With publish_via_partition_root PostgreSQL does not publish a
	// TRUNCATE of a single partition (documented in CREATE PUBLICATION):
	// only the root's is archived then.
	if viaRoot {
		e.exec(`TRUNCATE public.ev`)
	} else {
		e.exec(`TRUNCATE public.ev_eu`)
	}
	e.exec(`INSERT INTO public.ev VALUES ('b', 200, 'eu', 'after truncate')`)
	cps = append(cps, e.state("partition truncated", tenants))

	for _, cp := range cps {
		e.verifyState(cp)
	}
	p.Stop(t)
}

// TestGeneratedColumnsAndFullIdentityWithoutKey restores a table with
// STORED generated columns (pgoutput does not send them before PostgreSQL
// 18: the restore recomputes them) and a table without a primary key under
// REPLICA IDENTITY FULL holding identical rows, some of which are updated
// or deleted one copy at a time.
func TestGeneratedColumnsAndFullIdentityWithoutKey(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Pool})
	e.exec(`CREATE TABLE public.gen (tenant_id text NOT NULL, id int NOT NULL,
			price numeric NOT NULL, qty int NOT NULL,
			total numeric GENERATED ALWAYS AS (price * qty) STORED,
			note text,
			label text GENERATED ALWAYS AS (upper(note) || '#' || id) STORED,
			PRIMARY KEY (tenant_id, id))`)
	e.exec(`CREATE TABLE public.dups (tenant_id text NOT NULL, v int, w text); ALTER TABLE public.dups REPLICA IDENTITY FULL`)
	e.exec(`INSERT INTO public.gen (tenant_id, id, price, qty, note) SELECT t, i, i * 1.5, i, 'n' || i FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 5) i`)
	e.exec(`INSERT INTO public.dups SELECT t, i % 3, 'same' FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 9) i`)
	tables := []table{{"public", "gen", "tenant_id"}, {"public", "dups", "tenant_id"}}
	tenants := tenantsOf(tables, "a", "b")

	p := e.start()
	e.waitBaseline()
	var cps []stateCP
	cps = append(cps, e.state("snapshot", tenants))

	e.exec(`INSERT INTO public.gen (tenant_id, id, price, qty, note) VALUES ('a', 10, 2.25, 4, 'later')`)
	e.exec(`UPDATE public.gen SET qty = qty + 1 WHERE tenant_id = 'b' AND id = 2`)
	e.exec(`INSERT INTO public.dups VALUES ('a', 1, 'same'), ('a', 1, 'same'), ('b', NULL, NULL), ('b', NULL, NULL)`)
	cps = append(cps, e.state("inserts and updates", tenants))

	// One copy of a duplicate row at a time.
	e.exec(`DELETE FROM public.dups WHERE ctid = (SELECT ctid FROM public.dups WHERE tenant_id = 'a' AND v = 1 LIMIT 1)`)
	e.exec(`UPDATE public.dups SET w = 'changed' WHERE ctid = (SELECT ctid FROM public.dups WHERE tenant_id = 'a' AND v = 2 LIMIT 1)`)
	e.exec(`DELETE FROM public.dups WHERE ctid = (SELECT ctid FROM public.dups WHERE tenant_id = 'b' AND v IS NULL LIMIT 1)`)
	e.exec(`UPDATE public.gen SET note = NULL WHERE tenant_id = 'a' AND id = 1`)
	cps = append(cps, e.state("one copy of duplicates", tenants))

	for _, cp := range cps {
		e.verifyState(cp)
	}
	p.Stop(t)
}
