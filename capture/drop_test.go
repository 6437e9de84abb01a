package capture_test

import (
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/pipetest"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestEmbeddedConnectionDroppedDuringCatchUp: capture and archiver share
// the embedded server's connection while catching up on a backlog; the
// server drops it (as it drops a slow consumer). Both reconnect (capture
// from the slot), the backlog is archived, restores equal the source and
// nothing is archived twice.
func TestEmbeddedConnectionDroppedDuringCatchUp(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Pool})
	e.exec(`CREATE TABLE public.items (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id))`)
	tenants := map[string][]table{}
	for _, id := range []string{"a", "b", "c", "d"} {
		tenants[id] = []table{{"public", "items", "tenant_id"}}
	}
	p := e.start()
	e.waitBaseline()
	p.Stop(t)
	// A backlog of 400 transactions of 250 rows over four tenants.
	e.exec(`DO $$ BEGIN FOR i IN 1..400 LOOP
		INSERT INTO public.items SELECT (ARRAY['a','b','c','d'])[1 + (g % 4)], i * 1000 + g, repeat('x', 200) FROM generate_series(1, 250) g;
		COMMIT; END LOOP; END $$`)
	cp := e.checkpoint(tenants)
	p = e.start()
	// Drop once the archive holds part of the backlog (tenant a had no
	// rows before it), not all of it.
	var archived schemas.LSN
	waitFor(t, 20*time.Second, "the first of the backlog archived", func() bool {
		ten, err := catalog.LoadTenant(t.Context(), e.store, "a")
		if err == nil {
			archived = ten.Range.ToLSN
		}
		return err == nil
	})
	if archived >= cp.LSN {
		t.Fatalf("the backlog was archived up to %s before the drop: the test must drop mid catch-up", archived)
	}
	if n, err := p.Bus().DropClients(); err != nil || n == 0 {
		t.Fatalf("dropped %d connections: %v", n, err)
	}
	start := time.Now()
	// An acknowledgement sent as the connection dropped times out after
	// 10 s before its worker restarts: allow for that, then verify.
	waitFor(t, time.Minute, "the backlog archived after the drop", func() bool {
		for tenant := range tenants {
			ten, err := catalog.LoadTenant(t.Context(), e.store, schemas.TenantID(tenant))
			if err != nil || ten.Range.ToLSN < cp.LSN {
				return false
			}
		}
		return true
	})
	e.verify(cp)
	t.Logf("archived and verified %s after the drop", time.Since(start).Round(time.Millisecond))
	for tenant := range tenants {
		pipetest.CheckNoDuplicates(t, e.store, tenant)
	}
	p.Stop(t)
}
