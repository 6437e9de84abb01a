package capture_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/pipetest"
	"github.com/tenantwal/tenantwal/internal/workload"
)

var restartSpec = workload.Spec{Pool: []string{"acme", "umbrella corp/eu.west", "42"}, Bridge: []string{"hooli"}}

func specTables(spec workload.Spec) map[string][]table {
	out := map[string][]table{}
	for _, tenant := range spec.Tenants() {
		for _, tb := range spec.Tables(tenant) {
			out[tenant] = append(out[tenant], table{tb.Schema, tb.Name, tb.TenantColumn})
		}
	}
	return out
}

// TestRestartsNeitherLoseNorDuplicate stops capture and archiver (cancel)
// at arbitrary moments of a running workload and starts them again on the
// same slot, JetStream store and object store, and twice on a fresh
// JetStream store (its messages and de-duplication window lost): every
// restore at every checkpoint equals the source, and no change is archived
// twice.
func TestRestartsNeitherLoseNorDuplicate(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, route.Config{Model: route.Mixed})
	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := workload.Setup(ctx, conn, restartSpec); err != nil {
		t.Fatal(err)
	}
	var st workload.Stats
	if err := workload.Run(ctx, e.pool, restartSpec, workload.Options{MaxTxns: 50, Seed: 11}, &st); err != nil {
		t.Fatal(err)
	}
	tenants := specTables(restartSpec)

	p := e.start()
	e.waitBaseline()
	gate := &sync.RWMutex{}
	wctx, stopWork := context.WithCancel(ctx)
	workDone := make(chan error, 1)
	go func() {
		workDone <- workload.Run(wctx, e.pool, restartSpec, workload.Options{Gate: gate, Seed: 12, MultiTenant: 0.3}, &st)
	}()
	// advance waits for n more workload transactions.
	advance := func(n int64) {
		t.Helper()
		target := st.Txns.Load() + n
		waitFor(t, 10*time.Second, "workload progress", func() bool { return st.Txns.Load() >= target })
	}
	takeCheckpoint := func() checkpoint {
		gate.Lock()
		defer gate.Unlock()
		return e.checkpoint(tenants)
	}
	var cps []checkpoint
	for i := range 5 {
		advance(40)
		cps = append(cps, takeCheckpoint())
		advance(20 + int64(i*7))
		p.Stop(t) // mid-workload
		if i == 2 || i == 4 {
			e.busDir = t.TempDir() // JetStream lost everything
		}
		p = e.start()
	}
	advance(40)
	cps = append(cps, takeCheckpoint())
	stopWork()
	if err := <-workDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("workload: %d transactions, %d inserts, %d updates, %d deletes", st.Txns.Load(), st.Inserts.Load(), st.Updates.Load(), st.Deletes.Load())
	for tenant := range tenants {
		e.waitArchived(tenant, cps[len(cps)-1].LSN)
	}
	p.Stop(t)
	for _, cp := range cps {
		e.verify(cp)
	}
	for tenant := range tenants {
		pipetest.CheckNoDuplicates(t, e.store, tenant)
	}
}
