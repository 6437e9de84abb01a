package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/natstest"
)

// TestWatchDisconnect: WatchDisconnect returns nil when its context ends,
// and ErrDisconnected as soon as the nats-server process is killed; a
// publish while disconnected fails instead of being buffered for later.
func TestWatchDisconnect(t *testing.T) {
	proc := natstest.StartProcess(t)
	b, err := bus.Open(t.Context(), bus.Config{URL: proc.URL(), Partitions: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := b.WatchDisconnect(ctx); err != nil {
		t.Fatalf("WatchDisconnect after its context ended: %v, want nil", err)
	}

	done := make(chan error, 1)
	go func() { done <- b.WatchDisconnect(t.Context()) }()
	time.Sleep(50 * time.Millisecond) // let it register; a late start returns at once anyway
	proc.Kill()
	select {
	case err := <-done:
		if !errors.Is(err, bus.ErrDisconnected) {
			t.Fatalf("WatchDisconnect after the server was killed: %v, want ErrDisconnected", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchDisconnect did not notice the killed server")
	}
	if err := b.Conn().Publish(b.Subject(0), []byte("x")); err == nil {
		t.Error("a publish while disconnected was accepted (buffered for after the reconnect)")
	}
	if err := b.WatchDisconnect(t.Context()); !errors.Is(err, bus.ErrDisconnected) {
		t.Errorf("WatchDisconnect while disconnected: %v, want ErrDisconnected at once", err)
	}
	proc.Restart(t)
}
