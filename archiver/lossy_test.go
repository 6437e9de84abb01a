package archiver_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// lossyConsumer loses the next message it fetches once armed: the server
// counts it delivered, the worker never sees it (a pull response lost on
// the way, as on a loaded machine).
type lossyConsumer struct {
	jetstream.Consumer
	armed *atomic.Bool
	lost  *atomic.Int64
}

func (c lossyConsumer) Fetch(batch int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	b, err := c.Consumer.Fetch(batch, opts...)
	if err != nil {
		return nil, err
	}
	out := &lossyBatch{in: b, msgs: make(chan jetstream.Msg, batch)}
	go func() {
		defer close(out.msgs)
		for m := range b.Messages() {
			if c.armed.CompareAndSwap(true, false) {
				c.lost.Add(1)
				continue
			}
			out.msgs <- m
		}
	}()
	return out, nil
}

type lossyBatch struct {
	in   jetstream.MessageBatch
	msgs chan jetstream.Msg
}

func (b *lossyBatch) Messages() <-chan jetstream.Msg { return b.msgs }
func (b *lossyBatch) Error() error                   { return b.in.Error() }

// TestLostTailDeliveryIsFetchedAgain: a partition's last delivered message
// is lost before it reaches the worker, with no later message to reveal the
// gap. Without the worker asking the server what it delivered, the change
// would wait for the consumer's AckWait (5 minutes); it must be archived
// within seconds, once.
func TestLostTailDeliveryIsFetchedAgain(t *testing.T) {
	dir := t.TempDir()
	store, err := objstore.NewFile(dir + "/archive")
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Open(t.Context(), bus.Config{StoreDir: dir + "/nats", Partitions: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var armed atomic.Bool
	var lost atomic.Int64
	r := runArchiver(t, b, store, archiver.Config{FlushInterval: 20 * time.Millisecond, SpillDir: t.TempDir()},
		archiver.WithConsumerWrapper(func(c jetstream.Consumer) jetstream.Consumer {
			return lossyConsumer{Consumer: c, armed: &armed, lost: &lost}
		}))

	for _, c := range txn("a", 100, []schemas.Event{insert(0, "a", 1)}) {
		r.publish(t, c)
	}
	waitComplete(t, store, "a", 100)

	armed.Store(true)
	start := time.Now()
	for _, c := range txn("a", 200, []schemas.Event{insert(0, "a", 2), insert(1, "a", 3)}) {
		r.publish(t, c)
	}
	waitComplete(t, store, "a", 200) // 10 s, far below the 5 minute AckWait
	if lost.Load() != 1 {
		t.Fatalf("lost %d deliveries, want 1: the test did not exercise the lost tail", lost.Load())
	}
	t.Logf("the lost delivery was archived %s after its publish", time.Since(start).Round(time.Millisecond))
	assertUnique(t, archivedChanges(t, store, "a"), 3)
}

// TestLostFirstDeliveryIsFetchedAgain: the first delivery a worker's
// consumer makes is lost before it reaches the worker (as when a pull of
// the worker before a restart, still waiting in the server, takes it).
// The next delivery reveals the gap against the consumer's position at the
// start: the worker must not acknowledge past the lost one.
func TestLostFirstDeliveryIsFetchedAgain(t *testing.T) {
	dir := t.TempDir()
	store, err := objstore.NewFile(dir + "/archive")
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Open(t.Context(), bus.Config{StoreDir: dir + "/nats", Partitions: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var armed atomic.Bool
	var lost atomic.Int64
	armed.Store(true)
	r := runArchiver(t, b, store, archiver.Config{FlushInterval: 20 * time.Millisecond, SpillDir: t.TempDir()},
		archiver.WithConsumerWrapper(func(c jetstream.Consumer) jetstream.Consumer {
			return lossyConsumer{Consumer: c, armed: &armed, lost: &lost}
		}))
	for _, l := range []schemas.LSN{100, 200} {
		for _, c := range txn("a", l, []schemas.Event{insert(0, "a", int(l))}) {
			r.publish(t, c)
		}
	}
	waitComplete(t, store, "a", 200)
	if lost.Load() != 1 {
		t.Fatalf("lost %d deliveries, want 1: the test did not exercise the lost first delivery", lost.Load())
	}
	assertUnique(t, archivedChanges(t, store, "a"), 2)
}
