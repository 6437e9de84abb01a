package capture_test

import (
	"testing"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

var (
	accounts = table{"public", "accounts", "tenant_id"}
	plans    = table{"public", "plans", ""}
)

func bridgeTable(tenant, name string) table { return table{"tenant_" + tenant, name, ""} }

// TestInitialSnapshotAndNewTenants checks that the rows present before the
// first start are archived per tenant as snapshot entries at the baseline,
// and that tenants first seen later (a new pool tenant id, a new bridge
// schema) are restorable with their rows.
func TestInitialSnapshotAndNewTenants(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, route.Config{Model: route.Mixed, Shared: route.SharedArchive})
	e.exec(`CREATE TABLE public.accounts (tenant_id text NOT NULL, id int NOT NULL, name text, PRIMARY KEY (tenant_id, id))`)
	e.exec(`CREATE TABLE public.plans (code text PRIMARY KEY, price numeric)`)
	e.exec(`CREATE SCHEMA tenant_old; CREATE TABLE tenant_old.items (id int PRIMARY KEY, v text)`)
	e.exec(`INSERT INTO public.accounts SELECT t, i, 'acct ' || i FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 500) i`)
	e.exec(`INSERT INTO public.plans VALUES ('free', 0), ('pro', 9.99)`)
	e.exec(`INSERT INTO tenant_old.items SELECT i, repeat('x', i) FROM generate_series(1, 300) i`)
	before := e.checkpoint(map[string][]table{
		"a":                          {accounts},
		"b":                          {accounts},
		"old":                        {bridgeTable("old", "items")},
		string(schemas.SharedTenant): {plans},
	})

	p := e.start()
	base := e.waitBaseline()
	if base.LSN < before.LSN {
		t.Fatalf("baseline %s before the rows' insertion (%s)", base.LSN, before.LSN)
	}
	// Each tenant's first manifest entry is its snapshot, at the baseline.
	for tenant, sums := range before.Sums {
		entries, err := catalog.ReadManifest(ctx, e.store, schemas.TenantID(tenant))
		if err != nil {
			t.Fatal(err)
		}
		var rows int64
		var snap *schemas.ManifestEntry
		for _, en := range entries {
			if en.Kind == schemas.EntrySnapshot {
				snap = en
				for _, o := range en.Objects {
					rows += o.Rows
				}
			}
		}
		if snap == nil || snap.CompleteLSN != base.LSN {
			t.Errorf("tenant %q: want a snapshot entry complete at the baseline %s, got %+v", tenant, base.LSN, snap)
		}
		var want int64
		for _, s := range sums {
			want += s.Rows
		}
		if rows != want {
			t.Errorf("tenant %q: snapshot holds %d rows, the source had %d", tenant, rows, want)
		}
	}
	// Nothing was archived for tables without rows of a tenant, and the
	// restore at the baseline is exactly the rows inserted before.
	for tenant, want := range before.Sums {
		e.waitArchived(tenant, base.LSN)
		e.restoreAndCompare(tenant, replayer.Target{LSN: base.LSN}, want)
	}

	// After the baseline: a new pool tenant, a new bridge schema with a
	// table created later, and changes to the old tenants.
	e.exec(`INSERT INTO public.accounts SELECT 'c', i, 'new ' || i FROM generate_series(1, 50) i`)
	e.exec(`CREATE SCHEMA tenant_new; CREATE TABLE tenant_new.orders (id int PRIMARY KEY, total numeric, note text)`)
	e.exec(`INSERT INTO tenant_new.orders SELECT i, i * 1.5, NULL FROM generate_series(1, 20) i`)
	e.exec(`UPDATE public.accounts SET name = 'renamed' WHERE tenant_id = 'a' AND id <= 10`)
	e.exec(`DELETE FROM tenant_old.items WHERE id > 250`)
	e.exec(`CREATE TABLE tenant_old.extra (k text PRIMARY KEY); INSERT INTO tenant_old.extra VALUES ('one'), ('two')`)
	after := e.checkpoint(map[string][]table{
		"a":   {accounts},
		"b":   {accounts},
		"c":   {accounts},
		"old": {bridgeTable("old", "items"), bridgeTable("old", "extra")},
		"new": {bridgeTable("new", "orders")},
	})
	e.verify(after)
	p.Stop(t)

	// The new tenants had no rows at the baseline.
	e.restoreAndCompare("c", replayer.Target{LSN: base.LSN}, map[string]pgcheck.Sum{accounts.qualified(): {}})
	e.restoreAndCompare("new", replayer.Target{LSN: base.LSN}, map[string]pgcheck.Sum{"tenant_new.orders": {}})
	// And the old ones still restore at the baseline.
	for tenant, want := range before.Sums {
		e.restoreAndCompare(tenant, replayer.Target{LSN: base.LSN}, want)
	}
}

// TestLargeInitialSnapshot archives a tenant's snapshot that is published
// in many chunks and flushed by the archiver in several parts: the restore
// at the baseline holds every row.
func TestLargeInitialSnapshot(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Pool})
	e.flushBytes = 1 << 20
	e.exec(`CREATE TABLE public.accounts (tenant_id text NOT NULL, id int NOT NULL, name text, PRIMARY KEY (tenant_id, id))`)
	e.exec(`INSERT INTO public.accounts SELECT t, i, md5(i::text) || md5(t || i) FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 60000) i`)
	before := e.checkpoint(map[string][]table{"a": {accounts}, "b": {accounts}})
	p := e.start()
	base := e.waitBaseline()
	p.Stop(t)
	entries, err := catalog.ReadManifest(t.Context(), e.store, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 2 {
		t.Errorf("want the snapshot archived in several entries, got %d", len(entries))
	}
	for tenant, want := range before.Sums {
		e.restoreAndCompare(tenant, replayer.Target{LSN: base.LSN}, want)
	}
}
