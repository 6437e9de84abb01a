package faults_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/pipetest"
	"github.com/tenantwal/tenantwal/internal/workload"
	"github.com/tenantwal/tenantwal/schemas"
)

// burst runs the workload until stop is called; gate lets checkpoints in.
type burst struct {
	stop func()
	done chan error
	st   *workload.Stats
}

func startBurst(t *testing.T, e *pipetest.Env, gate *sync.RWMutex, seed uint64, st *workload.Stats) *burst {
	ctx, cancel := context.WithCancel(t.Context())
	b := &burst{stop: cancel, done: make(chan error, 1), st: st}
	go func() {
		b.done <- workload.Run(ctx, e.Pool, pipetest.Spec, workload.Options{Gate: gate, Seed: seed, MultiTenant: 0.3}, st)
	}()
	t.Cleanup(cancel)
	return b
}

func (b *burst) wait(t *testing.T, n int64) {
	t.Helper()
	target := b.st.Txns.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for b.st.Txns.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("workload stalled at %d transactions", b.st.Txns.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *burst) end(t *testing.T) {
	t.Helper()
	b.stop()
	if err := <-b.done; err != nil {
		t.Fatal(err)
	}
}

// streamBlocks returns the stream's message block files, oldest first.
func streamBlocks(t *testing.T, storeDir string) []string {
	t.Helper()
	blks, err := filepath.Glob(filepath.Join(storeDir, "jetstream", "$G", "streams", bus.DefaultStream, "msgs", "*.blk"))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(blks, func(a, b string) int {
		ia, ib := blkIndex(a), blkIndex(b)
		return ia - ib
	})
	return blks
}

func blkIndex(path string) int {
	n := 0
	for _, c := range filepath.Base(path) {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestNATSKilledDuringBurst kills the nats-server process with SIGKILL
// twice while a workload runs and capture and archiver stream it, and
// restarts it on the same store: restores at every checkpoint equal the
// source and no change is archived twice.
func TestNATSKilledDuringBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test")
	}
	e := pipetest.New(t, pipetest.Options{})
	spec := pipetest.Spec
	e.Setup(spec)
	capt := e.Capture(nil)
	arc := e.Archive(nil)
	e.WaitBaseline(capt, arc)
	gate := &sync.RWMutex{}
	var st workload.Stats
	b := startBurst(t, e, gate, 5, &st)
	var cps []pipetest.Checkpoint
	for range 2 {
		b.wait(t, 30)
		cps = append(cps, e.Checkpoint(spec, gate))
		b.wait(t, 20)
		e.NATS.Kill()
		b.wait(t, 20) // the source keeps writing while NATS is down
		e.NATS.Restart(t)
	}
	b.wait(t, 30)
	b.end(t)
	cps = append(cps, e.Checkpoint(spec, nil))
	if !strings.Contains(capt.Log(), "NATS connection lost") {
		t.Error("capture did not resume from the slot after the NATS server was killed")
	}
	for _, cp := range cps {
		e.Verify(cp, capt, arc)
	}
	for _, tenant := range spec.Tenants() {
		e.CheckNoDuplicates(tenant)
	}
}

// TestNATSLastBlockTruncated stops the archiver, lets capture publish a
// burst, kills nats-server, truncates the stream's last message block
// (messages that JetStream had acknowledged are lost) and restarts it: the
// lost changes are read again from the slot, which was confirmed only up
// to the archived watermark, and no watermark is written over the hole:
// restores at every checkpoint equal the source.
func TestNATSLastBlockTruncated(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test")
	}
	e := pipetest.New(t, pipetest.Options{})
	spec := pipetest.Spec
	e.Setup(spec)
	capt := e.Capture(nil)
	arc := e.Archive(nil)
	e.WaitBaseline(capt, arc)
	var st workload.Stats
	run := func(seed uint64) {
		t.Helper()
		if err := workload.Run(t.Context(), e.Pool, spec, workload.Options{MaxTxns: 60, Seed: seed, MultiTenant: 0.3}, &st); err != nil {
			t.Fatal(err)
		}
	}
	run(1)
	cps := []pipetest.Checkpoint{e.Checkpoint(spec, nil)}
	e.Verify(cps[0], capt, arc)
	arc.Stop(t)
	confirmed := e.SlotConfirmed()
	seq0 := e.StreamLastSeq()
	run(2)
	e.BigTxn(500)
	run(3)
	cps = append(cps, e.Checkpoint(spec, nil))
	fence := e.Fence()
	e.WaitFor(30*time.Second, "capture to publish the burst", func() bool {
		for _, m := range e.StreamMessages(seq0+1, 0) {
			if m.Batch.Kind == schemas.KindMarker && m.Batch.CommitLSN > fence {
				return true
			}
		}
		return false
	}, capt)
	seq1 := e.StreamLastSeq()
	e.NATS.Kill()
	blks := streamBlocks(t, e.NATS.StoreDir())
	last := blks[len(blks)-1]
	fi, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	t.Logf("slot confirmed %s; stream %d..%d published by the burst; truncated %s (%d blocks) from %d to %d bytes", confirmed, seq0+1, seq1, filepath.Base(last), len(blks), fi.Size(), fi.Size()/2)
	e.NATS.Restart(t)
	t.Logf("stream last seq after restart: %d", e.StreamLastSeq())
	e.WaitFor(30*time.Second, "capture to resume from the slot", func() bool {
		return strings.Contains(capt.Log(), "NATS connection lost")
	}, capt)
	arc = e.Archive(nil)
	run(4)
	cps = append(cps, e.Checkpoint(spec, nil))
	for _, cp := range cps {
		e.Verify(cp, capt, arc)
	}
	for _, tenant := range spec.Tenants() {
		e.CheckNoDuplicates(tenant)
	}
}
