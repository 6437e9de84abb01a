package archiver_test

import (
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestEmbeddedClientDropped: the embedded server drops the archiver's
// connection mid-stream (as it does a slow consumer). The archiver
// reconnects and archives everything, once, within seconds.
func TestEmbeddedClientDropped(t *testing.T) {
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := startArchiver(t, t.TempDir(), store)
	n := 0
	burst := func(from, to schemas.LSN) {
		for l := from; l < to; l++ {
			for _, c := range txn("a", l*0x100, []schemas.Event{insert(0, "a", int(l))}) {
				r.publish(t, c)
			}
			n++
		}
	}
	burst(1, 50)
	waitComplete(t, store, "a", 49*0x100)
	burst(50, 100)
	if n, err := r.bus.DropClients(); err != nil || n == 0 {
		t.Fatalf("dropped %d connections: %v", n, err)
	}
	time.Sleep(200 * time.Millisecond)
	burst(100, 150)
	start := time.Now()
	waitComplete(t, store, "a", 149*0x100)
	t.Logf("archived %s after the burst that followed the drop", time.Since(start).Round(time.Millisecond))
	assertUnique(t, archivedChanges(t, store, "a"), n)
}
