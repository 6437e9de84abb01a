package faults_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/failpoint"
	"github.com/tenantwal/tenantwal/internal/pipetest"
	"github.com/tenantwal/tenantwal/internal/verify"
	"github.com/tenantwal/tenantwal/internal/workload"
)

// TestArchiverKilledBeforeManifestAndBeforeAck kills `tenantwal archive`
// with SIGKILL after a flush's Parquet objects are stored but before its
// manifest entry is committed, and, on another backlog, after the manifest
// entries and the watermark are committed but before the JetStream messages
// are acknowledged. After each restart the redelivered changes are archived
// exactly once (the second restart skips them, counted by
// tenantwal_archiver_duplicate_changes_total), restores by LSN and time at
// every checkpoint equal the source, and `tenantwal verify` exits 0 and lists
// the first kill's objects as orphans.
func TestArchiverKilledBeforeManifestAndBeforeAck(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test")
	}
	ctx := t.Context()
	e := pipetest.New(t, pipetest.Options{})
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
	capt := e.Capture(nil)
	arc := e.Archive(nil)
	e.WaitBaseline(capt, arc)
	cps := []pipetest.Checkpoint{e.Checkpoint(spec, nil)}
	e.Verify(cps[0], capt, arc)
	arc.Stop(t)

	// Kill 1: objects stored, manifest entry not committed.
	run(2)
	e.BigTxn(300)
	cps = append(cps, e.Checkpoint(spec, nil))
	arc = e.Archive([]string{failpoint.Env + "=" + failpoint.ArchiverBeforeManifest})
	arc.WaitKilled(t, 60*time.Second)
	orphans := e.Orphans()
	if len(orphans) == 0 {
		t.Fatal("the archiver was killed before a manifest commit but left no object behind: the failpoint is not between the objects and the manifest")
	}
	t.Logf("kill 1 left %d orphan object(s)", len(orphans))
	arc = e.Archive(nil)
	e.Verify(cps[1], capt, arc)
	arc.Stop(t)

	// Kill 2: manifest entries and watermark committed, messages not
	// acknowledged.
	run(3)
	cps = append(cps, e.Checkpoint(spec, nil))
	arc = e.Archive([]string{failpoint.Env + "=" + failpoint.ArchiverBeforeAck})
	arc.WaitKilled(t, 60*time.Second)
	addr := pipetest.FreeAddr(t)
	arc = e.Archive(nil, "--metrics-addr", addr)
	run(4)
	cps = append(cps, e.Checkpoint(spec, nil))
	for _, cp := range cps {
		e.Verify(cp, capt, arc)
	}
	if d := pipetest.Metric(t, addr, "tenantwal_archiver_duplicate_changes_total"); d <= 0 {
		t.Errorf("after a kill between manifest commit and ack the restarted archiver skipped %v redelivered changes, want some", d)
	} else {
		t.Logf("kill 2: the restarted archiver skipped %v redelivered changes", d)
	}
	for _, tenant := range spec.Tenants() {
		e.CheckNoDuplicates(tenant)
	}
	capt.Stop(t)
	arc.Stop(t)

	// verify: exit 0, every orphan listed: the first kill's, and any that
	// other partitions' flushes left when the second kill struck.
	all := e.Orphans()
	for _, o := range orphans {
		if !slices.Contains(all, o) {
			t.Fatalf("orphan %s of kill 1 is gone or named by a manifest now", o)
		}
	}
	orphans = all
	out, errOut, code := e.CLI(append([]string{"verify", "--json"}, e.StoreArgs...)...)
	if code != 0 {
		t.Fatalf("tenantwal verify exited %d:\n%s\n%s", code, out, errOut)
	}
	var rep verify.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	for _, o := range rep.Orphans {
		listed[o] = true
	}
	for _, o := range orphans {
		if !listed[o] {
			t.Errorf("verify does not list orphan %s (it lists %v)", o, rep.Orphans)
		}
	}
	if len(rep.Problems) != 0 || len(rep.Orphans) != len(orphans) {
		t.Errorf("verify: problems %v, orphans %v; want no problem and exactly the %d orphans", rep.Problems, rep.Orphans, len(orphans))
	}
	out, _, code = e.CLI(append([]string{"verify"}, e.StoreArgs...)...)
	if code != 0 || strings.Count(out, "\norphan ") != len(orphans) || !strings.Contains(out, "OK:") {
		t.Errorf("tenantwal verify exited %d, want 0 with %d orphan lines and OK:\n%s", code, len(orphans), out)
	}
}
