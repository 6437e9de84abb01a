package faults_test

import (
	"context"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/failpoint"
	"github.com/tenantwal/tenantwal/internal/pipetest"
	"github.com/tenantwal/tenantwal/internal/workload"
	"github.com/tenantwal/tenantwal/schemas"
)

// bigRows makes BigTxn write 2×3000 accounts, ~6000 invoices, 3000
// projects, 2000 updates and ~1200 deletes: ~19k row changes, several
// chunks per tenant.
const bigRows = 3000

// TestCaptureKilledMidPublishAndAfterAck kills `tenantwal capture` with
// SIGKILL while it publishes a multi-table transaction of ~19k rows (after
// its third chunk), then again right after every message of that
// transaction was acknowledged by JetStream but before any marker or slot
// confirmation covered it; a transaction opened before the first kill
// commits after the second. After a normal restart, restores by LSN and by
// time at every checkpoint equal the source, and no change is archived
// twice. JetStream's duplicate window (2m) drops the republished chunks.
func TestCaptureKilledMidPublishAndAfterAck(t *testing.T) {
	testCaptureKills(t, 2*time.Minute)
}

// TestCaptureDownLongerThanDedupWindow is the same with a 1s JetStream
// duplicate window and capture down for longer: the replayed transaction
// is stored in the stream a second time, and the archiver alone (commit
// LSN + position) keeps it from being archived twice.
func TestCaptureDownLongerThanDedupWindow(t *testing.T) {
	testCaptureKills(t, time.Second)
}

func testCaptureKills(t *testing.T, window time.Duration) {
	if testing.Short() {
		t.Skip("kill test")
	}
	ctx := t.Context()
	e := pipetest.New(t, pipetest.Options{DedupWindow: window})
	spec := pipetest.Spec
	e.Setup(spec)
	var st workload.Stats
	if err := workload.Run(ctx, e.Pool, spec, workload.Options{MaxTxns: 40, Seed: 3}, &st); err != nil {
		t.Fatal(err)
	}
	// No heartbeats while the kills are aimed: the failpoints count
	// transactions, and the only ones streamed are the big one (and the
	// open one once it commits).
	quiet := []string{"--heartbeat", "1h"}
	arc := e.Archive(nil)
	capt := e.Capture(nil, quiet...)
	e.WaitBaseline(capt, arc)
	cps := []pipetest.Checkpoint{e.Checkpoint(spec, nil)}
	e.WaitConfirmed(e.Fence(), capt, arc)
	capt.Stop(t)

	// Item 7: a transaction open across the capture restarts.
	open, err := e.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Rollback(context.WithoutCancel(ctx))
	if _, err := open.Exec(ctx, `INSERT INTO public.accounts (tenant_id, name, plan_id) SELECT 'acme', 'open ' || g, 2 FROM generate_series(1, 50) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := open.Exec(ctx, `INSERT INTO tenant_hooli.projects (title) SELECT 'open ' || g FROM generate_series(1, 50) g`); err != nil {
		t.Fatal(err)
	}

	e.BigTxn(bigRows)
	bigCP := e.Checkpoint(spec, nil)
	cps = append(cps, bigCP)
	seq0 := e.StreamLastSeq()

	// Kill 1: after the third chunk of the big transaction was handed to
	// JetStream.
	capt = e.Capture([]string{failpoint.Env + "=" + failpoint.CapturePublished + "=3"}, quiet...)
	capt.WaitKilled(t, 60*time.Second)
	if c := e.SlotConfirmed(); c >= bigCP.LSN {
		t.Fatalf("slot confirmed to %s, past the unarchived big transaction (before %s)", c, bigCP.LSN)
	}
	// Kill 2: once every message of the big transaction was PubAck'ed.
	capt = e.Capture([]string{failpoint.Env + "=" + failpoint.CaptureTxnAcked}, quiet...)
	capt.WaitKilled(t, 60*time.Second)
	if c := e.SlotConfirmed(); c >= bigCP.LSN {
		t.Fatalf("slot confirmed to %s, past the big transaction that was only PubAck'ed (before %s)", c, bigCP.LSN)
	}
	msgs := e.StreamMessages(seq0+1, 0)
	var bigLSN schemas.LSN
	var chunks int
	final := map[schemas.TenantID]bool{}
	for _, m := range msgs {
		if m.Batch.Kind == schemas.KindChanges && len(m.Batch.Events) > 500 {
			bigLSN = m.Batch.CommitLSN
		}
	}
	for _, m := range msgs {
		if m.Batch.Kind == schemas.KindChanges && m.Batch.CommitLSN == bigLSN {
			chunks++
			final[m.Batch.Tenant] = final[m.Batch.Tenant] || m.Batch.Final
		}
	}
	for _, tenant := range []schemas.TenantID{"acme", "umbrella corp/eu.west", "hooli"} {
		if !final[tenant] {
			t.Fatalf("the stream holds %d chunks of the big transaction (commit %s), none final for tenant %q: every final chunk must be stored before kill 2 (finals: %v)", chunks, bigLSN, tenant, final)
		}
	}
	t.Logf("big transaction at %s: %d chunks in the stream after two kills, final for %v", bigLSN, chunks, final)
	seq1 := e.StreamLastSeq()
	if window < 10*time.Second {
		time.Sleep(2 * window) // capture stays down past the duplicate window
	}

	capt = e.Capture(nil)
	if err := open.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	cps = append(cps, e.Checkpoint(spec, nil))
	if err := workload.Run(ctx, e.Pool, spec, workload.Options{MaxTxns: 40, Seed: 4}, &st); err != nil {
		t.Fatal(err)
	}
	cps = append(cps, e.Checkpoint(spec, nil))
	for _, cp := range cps {
		e.Verify(cp, capt, arc)
	}
	// The replay of the big transaction after kill 2: dropped by
	// JetStream within its duplicate window, stored again past it.
	var again int
	for _, m := range e.StreamMessages(seq1+1, 0) {
		if m.Batch.Kind == schemas.KindChanges && m.Batch.CommitLSN == bigLSN {
			again++
		}
	}
	switch {
	case window >= 10*time.Second && again != 0:
		t.Errorf("JetStream stored %d chunks of the big transaction again within its duplicate window", again)
	case window < 10*time.Second && again == 0:
		t.Errorf("the replayed big transaction was not stored again past the duplicate window: the test does not exercise the archiver's de-duplication")
	}
	t.Logf("replayed chunks stored again: %d", again)
	for _, tenant := range spec.Tenants() {
		n := e.CheckNoDuplicates(tenant)
		t.Logf("tenant %q: %d changes archived", tenant, n)
	}
}
