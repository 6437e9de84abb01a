package capture_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/pgcheck"
	"github.com/tenantwal/tenantwal/internal/workload"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

var gapSpec = workload.Spec{Pool: []string{"acme", "initech"}, Bridge: []string{"hooli"}}

// gapScenario archives a workload, stops capture, writes more (changes the
// archive will never see, including every row of tenant acme deleted),
// breaks the slot with breakSlot, and starts capture again. It checks that
// capture recorded a gap with reason and took a fresh baseline, that
// restores before the gap and after it equal the source, and that restores
// inside it refuse, naming the gap and the nearest restorable points.
func gapScenario(t *testing.T, e *env, reason string, breakSlot func()) {
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := workload.Setup(ctx, conn, gapSpec); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	var st workload.Stats
	burst := func(n int64, seed uint64, tenants ...string) {
		t.Helper()
		if err := workload.Run(ctx, e.pool, gapSpec, workload.Options{MaxTxns: n, Seed: seed, Tenants: tenants}, &st); err != nil {
			t.Fatal(err)
		}
	}
	burst(40, 1)
	tenants := specTables(gapSpec)
	p := e.start()
	old := e.waitBaseline()
	burst(60, 2)
	before := e.checkpoint(tenants)
	// Every partition archived past the checkpoint: the gap starts after it.
	waitFor(t, 20*time.Second, "every partition archived past the checkpoint", func() bool {
		wms, err := catalog.ReadWatermarks(ctx, e.store)
		if err != nil {
			return false
		}
		for _, w := range wms {
			if w.CommitLSN < before.LSN {
				return false
			}
		}
		return len(wms) > 0
	})
	p.Stop(t)

	// Lost changes: a burst, and tenant acme emptied.
	burst(40, 3)
	e.exec(`DELETE FROM public.accounts WHERE tenant_id = 'acme'`)
	inside := e.checkpoint(tenants)
	insideTime := time.Now()
	breakSlot()

	p = e.start()
	var gaps []*schemas.Gap
	waitFor(t, 20*time.Second, "the gap record and the fresh baseline", func() bool {
		base, err := catalog.ReadBaseline(ctx, e.store)
		if err != nil || base.LSN <= old.LSN {
			return false
		}
		gaps, err = catalog.ReadGaps(ctx, e.store)
		return err == nil
	})
	if len(gaps) != 1 {
		t.Fatalf("gap records: %d, want 1", len(gaps))
	}
	g := gaps[0]
	if g.Reason != reason || g.Previous == nil || *g.Previous != *old {
		t.Errorf("gap: reason %q previous %+v, want %q and the old baseline %+v", g.Reason, g.Previous, reason, old)
	}
	if !(before.LSN <= g.FromLSN && g.FromLSN < inside.LSN && inside.LSN < g.ToLSN) {
		t.Errorf("gap %s..%s: want it to start at or after the last archived checkpoint %s and to contain the lost changes at %s",
			g.FromLSN, g.ToLSN, before.LSN, inside.LSN)
	}
	burst(60, 4, "initech", "hooli")
	after := e.checkpoint(tenants)
	for tenant := range tenants {
		e.waitArchived(tenant, after.LSN)
	}
	p.Stop(t)

	e.verify(before)
	e.verify(after) // acme: no rows, although its old snapshot and changes had some
	for tenant := range tenants {
		for _, target := range []replayer.Target{{LSN: inside.LSN}, {Time: insideTime}} {
			_, err := e.restore(tenant, target)
			if !errors.Is(err, replayer.ErrInGap) {
				t.Errorf("restore %q at %s inside the gap: %v, want ErrInGap", tenant, target, err)
				continue
			}
			for _, want := range []string{"gap", g.FromLSN.String(), g.ToLSN.String(), reason} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("restore %q into the gap: error %q does not name %q", tenant, err, want)
				}
			}
		}
	}
	if n := p.metric(t, "tenantwal_capture_rebaselines_total"); n != 1 {
		t.Errorf("rebaselines: %v, want 1", n)
	}
	var empty pgcheck.Sum
	if s := after.Sums["acme"]["public.accounts"]; s != empty {
		t.Fatalf("acme still has rows at %s: %s", after.LSN, s)
	}
}

// TestSlotDroppedRecordsGap drops the slot while capture is down.
func TestSlotDroppedRecordsGap(t *testing.T) {
	e := newEnv(t, route.Config{Model: route.Mixed})
	gapScenario(t, e, schemas.GapSlotMissing, func() {
		waitFor(t, 10*time.Second, "the slot dropped", func() bool {
			_, err := e.pool.Exec(t.Context(), `SELECT pg_drop_replication_slot($1)`, e.cfg.Slot)
			return err == nil // the walsender may still be exiting
		})
	})
}

// TestSlotInvalidatedRecordsGap lets the slot lose its WAL
// (max_slot_wal_keep_size) while capture is down.
func TestSlotInvalidatedRecordsGap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL")
	}
	s := ownServer(t, map[string]string{"max_slot_wal_keep_size": "1MB", "wal_keep_size": "0"})
	e := newOwnEnv(t, s, route.Config{Model: route.Mixed}, "")
	gapScenario(t, e, schemas.GapSlotLost, func() {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		for {
			var status string
			if err := e.pool.QueryRow(ctx, `SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`, e.cfg.Slot).Scan(&status); err != nil {
				t.Fatal(err)
			}
			if status == "lost" {
				return
			}
			for _, sql := range []string{`SELECT pg_logical_emit_message(false, 'filler', repeat('x', 1000000))`,
				`SELECT pg_switch_wal()`, `CHECKPOINT`} {
				if _, err := e.pool.Exec(ctx, sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
		}
	})
}

// TestOtherClusterNeedsRebaseline points capture at another cluster (a
// different system identifier, the same database name): it stops with an
// error naming --rebaseline, and with Rebaseline it records the gap and
// takes a fresh baseline of the new cluster.
func TestOtherClusterNeedsRebaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL clusters")
	}
	a := ownServer(t, nil)
	b := ownServer(t, nil)
	e := newOwnEnv(t, a, route.Config{Model: route.Mixed}, "")
	gapScenario(t, e, schemas.GapSystemChanged, func() {
		ctx := t.Context()
		db := e.dsn[strings.LastIndex(e.dsn, "/")+1 : strings.Index(e.dsn, "?")]
		aLSN := currentLSN(t, e.pool)
		pgtestExec(t, b.DSN("postgres"), "CREATE DATABASE "+db)
		e.dsn = b.DSN(db)
		e.cfg.DSN = e.dsn
		e.pool.Close()
		var err error
		if e.pool, err = pgxpool.New(ctx, e.dsn); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.pool.Close)
		conn, err := pgx.Connect(ctx, e.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := workload.Setup(ctx, conn, workload.Spec{Pool: gapSpec.Pool, Bridge: gapSpec.Bridge}); err != nil {
			t.Fatal(err)
		}
		// The archive orders by LSN: move the new cluster's WAL past it.
		for {
			if currentLSN(t, conn) > aLSN+(1<<20) {
				break
			}
			if _, err := conn.Exec(ctx, `SELECT pg_logical_emit_message(false, 'filler', repeat('x', 100000)), pg_switch_wal()`); err != nil {
				t.Fatal(err)
			}
		}
		p := e.start()
		err = p.Wait(t)
		if err == nil || !strings.Contains(err.Error(), "--rebaseline") {
			t.Fatalf("capture against another cluster: %v, want an error naming --rebaseline", err)
		}
		e.cfg.Rebaseline = true
	})
}

func pgtestExec(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// currentLSN returns pg_current_wal_lsn() of q's server.
func currentLSN(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) schemas.LSN {
	t.Helper()
	var s string
	if err := q.QueryRow(t.Context(), `SELECT pg_current_wal_lsn()::text`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, err := schemas.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}
