package capture_test

import (
	"testing"

	"github.com/tenantwal/tenantwal/capture/route"
)

var (
	moves     = table{"public", "moves", "tenant_id"}
	movesFull = table{"public", "moves_full", "tenant_id"}
	bulk      = table{"public", "bulk", "tenant_id"}
)

// TestTenantMovesKeyChangesBigTxnAndDeletes restores three tenants after
// rows move between tenants, primary keys change, one transaction of 50,000
// rows spans them and one tenant's rows are all deleted.
func TestTenantMovesKeyChangesBigTxnAndDeletes(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Pool})
	// No foreign keys: rows may move between tenants.
	e.exec(`CREATE TABLE public.moves (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id))`)
	e.exec(`CREATE TABLE public.moves_full (id int PRIMARY KEY, tenant_id text NOT NULL, v text); ALTER TABLE public.moves_full REPLICA IDENTITY FULL`)
	e.exec(`CREATE TABLE public.bulk (tenant_id text NOT NULL, id int NOT NULL, payload text, PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.moves SELECT t, i, t || i FROM unnest(ARRAY['a', 'b', 'c']) t, generate_series(1, 20) i`)
	e.exec(`INSERT INTO public.moves SELECT 'a', i, 'only a' FROM generate_series(21, 25) i`)
	e.exec(`INSERT INTO public.moves_full SELECT i, (ARRAY['a', 'b', 'c'])[1 + i % 3], 'v' || i FROM generate_series(1, 60) i`)
	tenants := map[string][]table{"a": {moves, movesFull, bulk}, "b": {moves, movesFull, bulk}, "c": {moves, movesFull, bulk}}

	p := e.start()
	e.waitBaseline()
	var cps []checkpoint
	cps = append(cps, e.checkpoint(tenants))

	// Tenant moves, in both identity kinds, in the same transaction as an
	// update of the moved row's new tenant.
	e.exec(`BEGIN;
		UPDATE public.moves SET tenant_id = 'b', id = 100 WHERE tenant_id = 'a' AND id = 3;
		UPDATE public.moves SET tenant_id = 'b', id = 104 WHERE tenant_id = 'a' AND id = 4;
		UPDATE public.moves SET tenant_id = 'b' WHERE tenant_id = 'a' AND id = 21;
		UPDATE public.moves_full SET tenant_id = 'b' WHERE id = 3;
		UPDATE public.moves_full SET tenant_id = 'a', v = 'moved' WHERE id = 4;
		UPDATE public.moves SET v = 'after move' WHERE tenant_id = 'b' AND id = 104;
		COMMIT`)
	cps = append(cps, e.checkpoint(tenants))

	// Primary key changes within a tenant, then changes to the new key.
	e.exec(`UPDATE public.moves SET id = id + 1000 WHERE tenant_id = 'a' AND id IN (5, 6)`)
	e.exec(`UPDATE public.moves_full SET id = id + 1000 WHERE id IN (6, 7)`)
	e.exec(`BEGIN;
		UPDATE public.moves SET id = 2000 WHERE tenant_id = 'b' AND id = 7;
		UPDATE public.moves SET v = 'new key' WHERE tenant_id = 'b' AND id = 2000;
		UPDATE public.moves SET id = 7 WHERE tenant_id = 'b' AND id = 8;
		COMMIT`)
	cps = append(cps, e.checkpoint(tenants))

	// One transaction of 50,000 rows over three tenants is chunked.
	before := p.metric(t, "tenantwal_capture_messages_published_total")
	e.exec(`BEGIN;
		INSERT INTO public.bulk SELECT (ARRAY['a', 'b', 'c'])[1 + i % 3], i, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 50000) i;
		UPDATE public.bulk SET payload = 'updated' WHERE id % 1000 = 0;
		DELETE FROM public.bulk WHERE id % 999 = 0;
		UPDATE public.moves SET v = 'in big txn' WHERE tenant_id = 'a';
		COMMIT`)
	cps = append(cps, e.checkpoint(tenants))
	waitFor(t, 10e9, "the big transaction published", func() bool {
		return p.metric(t, "tenantwal_capture_messages_published_total")-before >= 6
	})

	// Every row of tenant c goes.
	e.exec(`DELETE FROM public.moves WHERE tenant_id = 'c'`)
	e.exec(`BEGIN; DELETE FROM public.moves_full WHERE tenant_id = 'c'; DELETE FROM public.bulk WHERE tenant_id = 'c'; COMMIT`)
	cps = append(cps, e.checkpoint(tenants))
	if s := cps[len(cps)-1].Sums["c"]; s[moves.qualified()].Rows != 0 || s[bulk.qualified()].Rows != 0 {
		t.Fatalf("tenant c still has rows: %v", s)
	}

	for _, cp := range cps {
		e.verify(cp)
	}
	p.Stop(t)
}
