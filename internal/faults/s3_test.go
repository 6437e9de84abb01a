package faults_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/pipetest"
	"github.com/tenantwal/tenantwal/internal/s3test"
	"github.com/tenantwal/tenantwal/internal/workload"
)

// TestS3ServerStopped kills the S3 server (versitygw) that holds the
// archive while capture and archiver run and the source keeps writing:
// during the outage no JetStream message is acknowledged, the slot is not
// confirmed further, the archiver's failure and restart metrics grow and
// its log names the store error; once the server is started again on the
// same data, everything is archived, restores by LSN and time at every
// checkpoint equal the source, and nothing is archived twice.
func TestS3ServerStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test")
	}
	ctx := t.Context()
	srv := s3test.StartServer(t)
	e := pipetest.New(t, pipetest.Options{S3: srv})
	spec := pipetest.Spec
	e.Setup(spec)
	var st workload.Stats
	run := func(seed uint64) {
		t.Helper()
		if err := workload.Run(ctx, e.Pool, spec, workload.Options{MaxTxns: 40, Seed: seed, MultiTenant: 0.3}, &st); err != nil {
			t.Fatal(err)
		}
	}
	run(1)
	addr := pipetest.FreeAddr(t)
	capt := e.Capture(nil)
	arc := e.Archive(nil, "--metrics-addr", addr)
	e.WaitBaseline(capt, arc)
	cps := []pipetest.Checkpoint{e.Checkpoint(spec, nil)}
	e.Verify(cps[0], capt, arc)
	e.WaitConfirmed(e.Fence(), capt, arc)

	srv.Kill()
	floors := e.AckFloors()
	confirmed := e.SlotConfirmed()
	failures := pipetest.Metric(t, addr, "tenantwal_archiver_store_failures_total")
	restarts := pipetest.Metric(t, addr, "tenantwal_archiver_worker_restarts_total")
	run(2)
	e.BigTxn(200)
	cps = append(cps, e.Checkpoint(spec, nil))
	e.WaitFor(30*time.Second, "the archiver to fail on the stopped store and restart its workers", func() bool {
		return pipetest.Metric(t, addr, "tenantwal_archiver_store_failures_total") >= failures+2 &&
			pipetest.Metric(t, addr, "tenantwal_archiver_worker_restarts_total") >= restarts+2
	}, capt, arc)
	time.Sleep(2 * time.Second) // a few more flush attempts
	if got := e.AckFloors(); !maps.Equal(got, floors) {
		t.Errorf("consumers acknowledged messages while the store was down: ack floors %v, before %v", got, floors)
	}
	if c := e.SlotConfirmed(); c != confirmed {
		t.Errorf("the slot was confirmed from %s to %s while the store was down", confirmed, c)
	}
	if log := arc.Log(); !strings.Contains(log, "partition worker failed") || !strings.Contains(log, "connection refused") {
		t.Errorf("the archiver's log does not say the store is unreachable:\n%s", log[max(0, len(log)-3000):])
	}

	srv.Restart(t)
	run(3)
	cps = append(cps, e.Checkpoint(spec, nil))
	for _, cp := range cps {
		e.Verify(cp, capt, arc)
	}
	for _, tenant := range spec.Tenants() {
		e.CheckNoDuplicates(tenant)
	}
}
