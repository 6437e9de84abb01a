package capture_test

import (
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/pipetest"
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
	time.Sleep(time.Second)
	if ten, err := catalog.LoadTenant(t.Context(), e.store, "a"); err != nil || ten.Range.ToLSN >= cp.LSN {
		t.Fatalf("before the drop: %v; the backlog must not be archived yet", err)
	}
	if n, err := p.Bus().DropClients(); err != nil || n == 0 {
		t.Fatalf("dropped %d connections: %v", n, err)
	}
	start := time.Now()
	e.verify(cp)
	t.Logf("archived and verified %s after the drop", time.Since(start).Round(time.Millisecond))
	for tenant := range tenants {
		pipetest.CheckNoDuplicates(t, e.store, tenant)
	}
	p.Stop(t)
}
