package bus

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestEmbeddedMaxPending: the embedded server queues enough for one
// client to hold every partition's pull at max_payload twice over, so
// capture and archiver sharing a connection are not dropped as a slow
// consumer while they catch up; a slow consumer is logged as a warning.
func TestEmbeddedMaxPending(t *testing.T) {
	b, err := Open(t.Context(), Config{StoreDir: t.TempDir(), Partitions: 16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(t.Context())
	vz, err := b.embedded.Varz(nil)
	if err != nil {
		t.Fatal(err)
	}
	pulls := int64(16) * int64(PullBytes(b.MaxPayload()))
	if vz.MaxPending < 2*pulls || pulls < 16*int64(b.MaxPayload()) {
		t.Errorf("embedded max_pending %d, want at least %d (16 pulls of max_payload %d, twice)", vz.MaxPending, 2*pulls, b.MaxPayload())
	}
	// A smaller max_payload still pulls 4 MiB a partition.
	if got := embeddedMaxPending(&Config{Partitions: 16, MaxPayload: 1 << 20}); got != 2*16*4<<20 {
		t.Errorf("max_pending for 16 partitions of max_payload 1 MiB: %d, want %d", got, 2*16*4<<20)
	}
	if got := embeddedMaxPending(&Config{Partitions: 1, MaxPayload: 1 << 20}); got != 64<<20 {
		t.Errorf("max_pending for one small partition %d, want nats-server's 64 MiB", got)
	}

	var out bytes.Buffer
	sl := &serverLog{l: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	sl.Noticef("Slow Consumer Detected: MaxPending of %d Exceeded", 64<<20)
	sl.Noticef("Server is ready")
	if s := out.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "Slow Consumer") || strings.Contains(s, "ready") {
		t.Errorf("server log at info level: %q; want the slow consumer as a warning and nothing else", s)
	}
}
