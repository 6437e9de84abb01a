package archiver_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	n, retry := 0, false
	burst := func(from, to schemas.LSN) {
		for l := from; l < to; l++ {
			for _, c := range txn("a", l*0x100, []schemas.Event{insert(0, "a", int(l))}) {
				if !retry {
					r.publish(t, c)
					continue
				}
				data, err := c.AppendEncode(nil)
				if err != nil {
					t.Fatal(err)
				}
				p := schemas.Partition(c.Tenant, r.bus.Partitions())
				msg := &nats.Msg{Subject: r.bus.Subject(p), Data: data}
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					_, err := r.bus.JetStream().PublishMsg(t.Context(), msg, jetstream.WithMsgID(c.MsgID(p)))
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("publish after the drop: %v", err)
					}
				}
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
	// The test publishes on the same connection: burst's publishes retry
	// until it is back (the de-duplication id makes a retry safe).
	retry = true
	burst(100, 150)
	start := time.Now()
	// Workers whose acks failed while disconnected restart with backoff.
	waitCompleteWithin(t, store, "a", 149*0x100, time.Minute)
	t.Logf("archived %s after the burst that followed the drop", time.Since(start).Round(time.Millisecond))
	assertUnique(t, archivedChanges(t, store, "a"), n)
}
