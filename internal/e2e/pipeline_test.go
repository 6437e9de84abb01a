package e2e_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/internal/s3test"
	"github.com/tenantwal/tenantwal/internal/workload"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// spec mixes pool tenants whose ids need escaping everywhere with bridge
// tenants.
var spec = workload.Spec{
	Pool:   []string{"acme", "umbrella corp/eu.west", "*>", "8a7f2b3c-0000-4000-8000-000000000001", "42", "ünï"},
	Bridge: []string{"hooli", "pied_piper"},
}

// restored are the tenants restored at every checkpoint: two pool tenants
// (one with a hostile id) and one bridge tenant.
var restored = []string{"acme", "umbrella corp/eu.west", "hooli"}

func TestRestoreAtCheckpointsFile(t *testing.T) {
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testRestoreAtCheckpoints(t, store)
}

func TestRestoreAtCheckpointsS3(t *testing.T) {
	endpoint, key, secret := s3test.Start(t)
	bucket := s3test.Bucket(t)
	store, err := objstore.NewS3(t.Context(), bucket, "archive", objstore.S3Options{Endpoint: endpoint, PathStyle: true, AccessKey: key, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	testRestoreAtCheckpoints(t, store)
}

// testRestoreAtCheckpoints runs a random pool + bridge workload, records the
// restored tenants' checksums at five checkpoints, and restores each of them
// at each checkpoint by LSN and by time.
func testRestoreAtCheckpoints(t *testing.T, store objstore.Store) {
	ctx := t.Context()
	dsn := pgtest.NewDB(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := workload.Setup(ctx, conn, spec); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var st workload.Stats
	// Rows that exist before capture starts come from the initial snapshot.
	if err := workload.Run(ctx, pool, spec, workload.Options{MaxTxns: 150, Seed: 3}, &st); err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t, dsn, store, route.Config{Model: route.Mixed})
	waitFor(t, time.Minute, "the initial snapshot", func() bool {
		_, err := catalog.ReadBaseline(ctx, store)
		return err == nil
	})

	gate := &sync.RWMutex{}
	wctx, stopWork := context.WithCancel(ctx)
	workDone := make(chan error, 1)
	go func() {
		workDone <- workload.Run(wctx, pool, spec, workload.Options{Gate: gate, Seed: 5, MultiTenant: 0.3}, &st)
	}()
	var cps []checkpoint
	for range 5 {
		select {
		case <-time.After(700 * time.Millisecond):
		case err := <-workDone:
			t.Fatalf("workload stopped: %v", err)
		}
		cps = append(cps, takeCheckpoint(t, pool, gate, spec, restored))
	}
	time.Sleep(300 * time.Millisecond)
	testSampleRestore(t, dsn, store)
	stopWork()
	if err := <-workDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("workload: %d transactions, %d inserts, %d updates, %d deletes", st.Txns.Load(), st.Inserts.Load(), st.Updates.Load(), st.Deletes.Load())
	last := cps[len(cps)-1]
	for _, tenant := range restored {
		waitFor(t, time.Minute, "tenant "+tenant+" archived past the last checkpoint", func() bool {
			ten, err := catalog.LoadTenant(ctx, store, schemas.TenantID(tenant))
			return err == nil && ten.Range.ToLSN >= last.LSN && !ten.Range.ToTime.Before(last.Time)
		})
	}
	// A side-by-side restore into the source while capture runs must not
	// be archived as the tenant's data: later restores would show its
	// tables (restoreAndCompare fails on unexpected tables).
	restoreAndCompare(t, pool, store, restored[0], replayer.Target{LSN: cps[0].LSN}, cps[0].Sums[restored[0]])
	if _, err := pool.Exec(ctx, "SELECT pg_logical_emit_message(true, 'test', 'after restore')"); err != nil {
		t.Fatal(err)
	}
	var after string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&after); err != nil {
		t.Fatal(err)
	}
	afterLSN, _ := schemas.ParseLSN(after)
	waitFor(t, time.Minute, "the archive to pass the restore", func() bool {
		ten, err := catalog.LoadTenant(ctx, store, schemas.TenantID(restored[0]))
		return err == nil && ten.Range.ToLSN >= afterLSN
	})
	p.Stop(t)
	ten, err := catalog.LoadTenant(ctx, store, schemas.TenantID(restored[0]))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := replayer.PlanRestore(ten, replayer.Target{LSN: ten.Range.ToLSN})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range plan.Tables {
		if _, ok := cps[0].Sums[restored[0]][tp.Name]; !ok {
			t.Errorf("tenant %q: the archive holds table %s: a restore's output was archived", restored[0], tp.Name)
		}
	}

	for i, cp := range cps {
		for _, tenant := range restored {
			restoreAndCompare(t, pool, store, tenant, replayer.Target{LSN: cp.LSN}, cp.Sums[tenant])
			restoreAndCompare(t, pool, store, tenant, replayer.Target{Time: cp.Time}, cp.Sums[tenant])
		}
		if !t.Failed() {
			t.Logf("checkpoint %d (LSN %s, %s): %d tenants restored by LSN and time, all tables equal", i+1, cp.LSN, cp.Time.Format(time.RFC3339Nano), len(restored))
		}
	}
	testRestoreErrors(t, pool, store)
	testVerify(t, pool, store)
}

// testRestoreErrors checks the messages of bad restore requests.
func testRestoreErrors(t *testing.T, pool *pgxpool.Pool, store objstore.Store) {
	ctx := t.Context()
	if _, err := catalog.LoadTenant(ctx, store, "no-such-tenant"); !errors.Is(err, catalog.ErrUnknownTenant) || !strings.Contains(err.Error(), "tenantwal ls") {
		t.Errorf("unknown tenant: %v", err)
	}
	ten, err := catalog.LoadTenant(ctx, store, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []replayer.Target{
		{Time: ten.Range.FromTime.Add(-time.Hour)},
		{Time: ten.Range.ToTime.Add(time.Hour)},
		{LSN: ten.Range.ToLSN + 1<<30},
	} {
		_, err := replayer.PlanRestore(ten, target)
		if !errors.Is(err, replayer.ErrOutOfRange) || !strings.Contains(err.Error(), ten.Range.String()) {
			t.Errorf("target %s: want an out-of-range error naming the range %s, got %v", target, ten.Range, err)
		}
	}
	plan, err := replayer.PlanRestore(ten, replayer.Target{LSN: ten.Range.ToLSN})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA taken"); err != nil {
		t.Fatal(err)
	}
	_, err = replayer.Apply(ctx, store, conn.Conn(), plan, replayer.Options{Schema: "taken"})
	if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--schema") {
		t.Errorf("existing schema: %v", err)
	}
}
