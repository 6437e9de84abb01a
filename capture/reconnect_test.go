package capture_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/pgserver"
	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/internal/pipetest"
	"github.com/tenantwal/tenantwal/internal/workload"
)

// ownServer starts a PostgreSQL cluster of the test's own, which it may
// stop and restart, with settings on top of the harness's.
func ownServer(t *testing.T, settings map[string]string) *pgserver.Server {
	t.Helper()
	all := map[string]string{"fsync": "off", "full_page_writes": "off"}
	for k, v := range settings {
		all[k] = v
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := pgserver.Start(ctx, pgserver.Options{Settings: all})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop own PostgreSQL: %v", err)
		}
	})
	return s
}

// newOwnEnv is newEnv on a database of server s; capture connects through
// captureHost ("host:port", "" for s itself), everything else directly.
// Restores go to a database of the shared cluster.
func newOwnEnv(t *testing.T, s *pgserver.Server, rc route.Config, captureHost string) *env {
	t.Helper()
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.RandomName("t_")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	dsn := s.DSN(db)
	cdsn := dsn
	if captureHost != "" {
		cdsn = strings.Replace(dsn, fmt.Sprintf("127.0.0.1:%d", s.Port()), captureHost, 1)
	}
	return newEnvFor(t, dsn, cdsn, rc)
}

// TestReconnectsAfterCrashAndBlackhole stops PostgreSQL with an immediate
// shutdown (no checkpoint, crash recovery on restart) while capture is
// streaming a burst, and later blackholes the replication connection (a
// proxy stops forwarding without closing) for longer than
// wal_sender_timeout: each time capture notices within the timeout,
// reconnects with backoff and resumes from the slot, and restores at
// every checkpoint equal the source with no change archived twice.
func TestReconnectsAfterCrashAndBlackhole(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts PostgreSQL")
	}
	const senderTimeout = 2 * time.Second
	s := ownServer(t, map[string]string{"wal_sender_timeout": "2s"})
	px := startProxy(t, fmt.Sprintf("127.0.0.1:%d", s.Port()))
	spec := workload.Spec{Pool: []string{"acme", "umbrella corp/eu.west"}, Bridge: []string{"hooli"}}
	e := newOwnEnv(t, s, route.Config{Model: route.Mixed}, px.addr())
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := workload.Setup(ctx, conn, spec); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	var st workload.Stats
	burst := func(n int64, seed uint64) {
		t.Helper()
		if err := workload.Run(ctx, e.pool, spec, workload.Options{MaxTxns: n, Seed: seed, MultiTenant: 0.3}, &st); err != nil {
			t.Fatal(err)
		}
	}
	burst(30, 1)
	tenants := specTables(spec)
	p := e.start()
	e.waitBaseline()

	// A burst, then an immediate stop while capture is still on it.
	burst(300, 2)
	cps := []checkpoint{e.checkpoint(tenants)}
	if err := s.StopImmediate(); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = s.Restart(rctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	e.pool.Reset() // its connections died with the server
	burst(100, 3)
	cps = append(cps, e.checkpoint(tenants))
	for tenant := range tenants {
		e.waitArchived(tenant, cps[1].LSN)
	}
	if n := p.metric(t, "tenantwal_capture_interruptions_total"); n < 1 {
		t.Errorf("capture interruptions after the crash: %v, want at least 1", n)
	}

	// Blackhole capture's connections; the source keeps taking writes.
	before := p.metric(t, "tenantwal_capture_interruptions_total")
	if n := px.blackhole(); n < 2 {
		t.Fatalf("blackholed %d connections, want capture's replication and SQL connections", n)
	}
	start := time.Now()
	burst(100, 4)
	cps = append(cps, e.checkpoint(tenants))
	for tenant := range tenants {
		e.waitArchived(tenant, cps[2].LSN)
	}
	// Noticed after about one timeout, then at most a few backoffs while
	// the server's walsender times out and frees the slot.
	if took := time.Since(start); took > 8*senderTimeout+10*time.Second {
		t.Errorf("resumed %s after the blackhole, want well under the old fixed 2m idle timeout", took)
	}
	if n := p.metric(t, "tenantwal_capture_interruptions_total"); n <= before {
		t.Errorf("capture interruptions did not grow over the blackhole (%v)", n)
	}
	burst(50, 5)
	cps = append(cps, e.checkpoint(tenants))
	for tenant := range tenants {
		e.waitArchived(tenant, cps[3].LSN)
	}
	p.Stop(t)
	for _, cp := range cps {
		e.verify(cp)
	}
	for tenant := range tenants {
		pipetest.CheckNoDuplicates(t, e.store, tenant)
	}
}
