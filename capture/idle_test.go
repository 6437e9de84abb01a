package capture_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/workload"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// slotLag returns the slot's confirmed position and the WAL it retains
// (pg_current_wal_lsn() - confirmed_flush_lsn) in bytes.
func (e *env) slotLag() (schemas.LSN, int64) {
	e.t.Helper()
	var confirmed string
	var lag int64
	err := e.pool.QueryRow(e.t.Context(), `SELECT confirmed_flush_lsn::text, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
FROM pg_replication_slots WHERE slot_name = $1`, e.cfg.Slot).Scan(&confirmed, &lag)
	if err != nil {
		e.t.Fatal(err)
	}
	lsn, err := schemas.ParseLSN(confirmed)
	if err != nil {
		e.t.Fatal(err)
	}
	return lsn, lag
}

// TestIdleTenantsKeepAdvancing runs a busy pool workload beside an idle
// bridge tenant of the same database, and beside a second database with
// its own capture that nobody writes to: heartbeats keep both slots'
// confirmed positions and the idle tenants' complete-up-to times
// advancing, the WAL each slot retains stays bounded, and the idle tenants
// restore to their latest point equal to the source.
func TestIdleTenantsKeepAdvancing(t *testing.T) {
	ctx := t.Context()
	spec := workload.Spec{Pool: []string{"busy", "busier"}, Bridge: []string{"idle"}}
	idleSpec := workload.Spec{Bridge: []string{"quiet"}}
	busyEnv := newEnv(t, route.Config{Model: route.Mixed})
	idleEnv := newEnv(t, route.Config{Model: route.Mixed})
	for _, x := range []struct {
		e    *env
		spec workload.Spec
	}{{busyEnv, spec}, {idleEnv, idleSpec}} {
		conn, err := pgx.Connect(ctx, x.e.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if err := workload.Setup(ctx, conn, x.spec); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		if err := workload.Run(ctx, x.e.pool, x.spec, workload.Options{MaxTxns: 30, Seed: 1}, &workload.Stats{}); err != nil {
			t.Fatal(err)
		}
	}
	busyEnv.start()
	idleEnv.start()
	busyEnv.waitBaseline()
	idleEnv.waitBaseline()
	idleTables := map[string][]table{"idle": specTables(spec)["idle"]}
	quietTables := specTables(idleSpec)
	idleCP := busyEnv.checkpoint(idleTables)
	quietCP := idleEnv.checkpoint(quietTables)

	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	var st workload.Stats
	go func() {
		done <- workload.Run(wctx, busyEnv.pool, spec, workload.Options{Seed: 2, Tenants: spec.Pool}, &st)
	}()
	// WAL of a third database, which neither slot decodes a change of.
	go func() {
		for wctx.Err() == nil {
			if _, err := busyEnv.rpool.Exec(wctx, `SELECT pg_logical_emit_message(false, 'filler', repeat('x', 65536))`); err != nil && wctx.Err() == nil {
				done <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		done <- nil
	}()
	type sample struct {
		at                      time.Time
		idleTo, quietTo         time.Time
		busySlot, quietSlot     schemas.LSN
		busyRetain, quietRetain int64
		wal                     schemas.LSN // pg_current_wal_lsn()
	}
	toTime := func(e *env, tenant string) time.Time {
		ten, err := catalog.LoadTenant(ctx, e.store, schemas.TenantID(tenant))
		if err != nil {
			t.Fatal(err)
		}
		return ten.Range.ToTime
	}
	var samples []sample
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for range 12 {
		<-tick.C
		s := sample{at: time.Now(), idleTo: toTime(busyEnv, "idle"), quietTo: toTime(idleEnv, "quiet")}
		s.busySlot, s.busyRetain = busyEnv.slotLag()
		s.quietSlot, s.quietRetain = idleEnv.slotLag()
		s.wal = currentLSN(t, busyEnv.pool)
		samples = append(samples, s)
	}
	stop()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var busyBytes int64
	if err := busyEnv.pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint`, samples[0].busySlot.String()).Scan(&busyBytes); err != nil {
		t.Fatal(err)
	}
	t.Logf("busy workload: %d transactions, %d KiB of WAL", st.Txns.Load(), busyBytes>>10)

	const maxLag = 5 * time.Second // complete-up-to behind the clock
	const window = 3               // seconds a slot may fall behind
	for i := window; i < len(samples); i++ {
		s, prev := samples[i], samples[i-window]
		if lag := s.at.Sub(s.idleTo); lag > maxLag {
			t.Errorf("sample %d: idle bridge tenant complete up to %s, %s behind", i, s.idleTo.Format(time.RFC3339Nano), lag)
		}
		if lag := s.at.Sub(s.quietTo); lag > maxLag {
			t.Errorf("sample %d: tenant of the idle database complete up to %s, %s behind", i, s.quietTo.Format(time.RFC3339Nano), lag)
		}
		if s.busySlot <= prev.busySlot || s.quietSlot <= prev.quietSlot {
			t.Errorf("sample %d: a slot did not advance in %ds: busy %s -> %s, idle database %s -> %s", i, window, prev.busySlot, s.busySlot, prev.quietSlot, s.quietSlot)
		}
		// Bounded: no more than the WAL of the last few seconds.
		bound := int64(s.wal-prev.wal) + 1<<20
		if s.busyRetain > bound || s.quietRetain > bound {
			t.Errorf("sample %d: slots retain %d KiB (busy) and %d KiB (idle database) of WAL, more than the %d KiB written in the last %ds",
				i, s.busyRetain>>10, s.quietRetain>>10, bound>>10, window)
		}
	}
	var maxBusy, maxQuiet int64
	for _, s := range samples {
		maxBusy, maxQuiet = max(maxBusy, s.busyRetain), max(maxQuiet, s.quietRetain)
	}
	t.Logf("most WAL retained: %d KiB by the busy database's slot, %d KiB by the idle one's", maxBusy>>10, maxQuiet>>10)
	if busyBytes < 4*max(maxBusy, maxQuiet) {
		t.Errorf("the sources wrote only %d KiB of WAL, not enough to show that retention stays bounded", busyBytes>>10)
	}
	// The idle tenants restore at their newest point to what they were.
	for _, x := range []struct {
		e      *env
		tenant string
		cp     checkpoint
	}{{busyEnv, "idle", idleCP}, {idleEnv, "quiet", quietCP}} {
		ten, err := catalog.LoadTenant(ctx, x.e.store, schemas.TenantID(x.tenant))
		if err != nil {
			t.Fatal(err)
		}
		x.e.restoreAndCompare(x.tenant, replayer.Target{LSN: ten.Range.ToLSN}, x.cp.Sums[x.tenant])
	}
}
