package archiver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestBufferBudgetFlushesEarly: one big transaction of two tenants in two
// partitions, with a flush interval and FlushBytes that never trigger: the
// shared BufferBytes budget alone makes the partitions flush, each entry
// holding about its share, and every row is archived once.
func TestBufferBudgetFlushesEarly(t *testing.T) {
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const budget = 64 << 10
	r := startArchiver(t, t.TempDir(), store, func(c *archiver.Config) {
		c.FlushInterval, c.FlushBytes, c.BufferBytes = time.Hour, 1<<30, budget
	})
	tenants := []string{"a", "b"}
	if schemas.Partition("a", 4) == schemas.Partition("b", 4) {
		t.Fatal("pick tenants of two partitions")
	}
	const chunks, perChunk = 40, 50
	for c := range chunks {
		for _, tn := range tenants {
			evs := make([]schemas.Event, perChunk)
			for i := range evs {
				n := c*perChunk + i
				evs[i] = insert(uint32(n+1), tn, n)
			}
			b := txn(tn, 0x1000, evs)[0]
			b.Chunk, b.Final = uint32(c), c == chunks-1
			r.publish(t, b)
		}
	}
	// Only the budget flushes: wait for most rows to be archived.
	deadline := time.Now().Add(30 * time.Second)
	for _, tn := range tenants {
		for {
			got := len(archivedChanges(t, store, tn))
			if got >= chunks*perChunk/2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tenant %q: %d of %d rows archived by budget flushes", tn, got, chunks*perChunk)
			}
			time.Sleep(50 * time.Millisecond)
		}
		entries, err := catalog.ReadManifest(t.Context(), store, schemas.TenantID(tn))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) < 2 {
			t.Errorf("tenant %q: %d entries, want several budget flushes", tn, len(entries))
		}
		for _, e := range entries {
			var rows int64
			for _, o := range e.Objects {
				rows += o.Rows
			}
			// ~150 bytes a row: an entry holds at most the budget plus
			// the chunk that crossed it.
			if rows*100 > budget+perChunk*200 {
				t.Errorf("tenant %q: entry %d holds %d rows, more than the budget allows", tn, e.Seq, rows)
			}
		}
		got := archivedChanges(t, store, tn)
		seen := map[string]bool{}
		for _, c := range got {
			if seen[c] {
				t.Errorf("tenant %q: change %s archived twice", tn, c)
			}
			seen[c] = true
		}
	}
}

// TestBufferBudgetCountsTenantOverhead: many tenants of one small row each,
// with a flush interval and FlushBytes that never trigger. Their rows'
// values alone (~150 bytes a tenant, 150 KB) stay under the budget; what
// each buffered tenant costs besides (its buffer, part and table, ~450
// bytes more) is counted too, so the budget makes the partitions flush.
// Before it was counted, nothing was ever archived here.
func TestBufferBudgetCountsTenantOverhead(t *testing.T) {
	store, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const budget, tenants = 256 << 10, 1000
	r := startArchiver(t, t.TempDir(), store, func(c *archiver.Config) {
		c.FlushInterval, c.FlushBytes, c.BufferBytes = time.Hour, 1<<30, budget
	})
	for i := range tenants {
		tn := fmt.Sprintf("t%04d", i)
		r.publish(t, txn(tn, schemas.LSN(0x1000+16*i), []schemas.Event{insert(1, tn, i)})[0])
	}
	// Only the budget flushes: wait for at least a third of the tenants.
	deadline := time.Now().Add(30 * time.Second)
	var archived []schemas.TenantID
	for len(archived) < tenants/3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tenants archived by budget flushes, want at least %d", len(archived), tenants, tenants/3)
		}
		time.Sleep(50 * time.Millisecond)
		if archived, err = catalog.ListTenants(t.Context(), store); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range archived[:10] {
		var i int
		if _, err := fmt.Sscanf(string(tn), "t%d", &i); err != nil {
			t.Fatal(err)
		}
		waitComplete(t, store, string(tn), schemas.LSN(0x1000+16*i))
		assertUnique(t, archivedChanges(t, store, string(tn)), 1)
	}
}
