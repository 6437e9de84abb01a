package archiver

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestRestartWait: failures back off exponentially up to the maximum and
// start over after a long good run; delivery gaps restart at once and
// never grow the backoff (repeated gaps on a loaded machine once stalled a
// partition for the maximum backoff each time).
func TestRestartWait(t *testing.T) {
	const lo, hi = time.Second, 30 * time.Second
	storeDown := errors.New("put: connection refused")
	gap := fmt.Errorf("partition 3: %w: delivery 12 after 10", errDeliveryGap)

	wait, next := time.Duration(0), lo
	var waits []time.Duration
	for range 7 {
		wait, next = restartWait(storeDown, time.Second, next, lo, hi)
		waits = append(waits, wait)
	}
	want := []time.Duration{lo, 2 * lo, 4 * lo, 8 * lo, 16 * lo, hi, hi}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("failure waits %v, want %v", waits, want)
		}
	}
	for range 5 {
		if wait, next = restartWait(gap, 10*time.Millisecond, next, lo, hi); wait != gapRestartWait || next != hi {
			t.Fatalf("after a gap: wait %s (want %s), next backoff %s (want it unchanged at %s)", wait, gapRestartWait, next, hi)
		}
	}
	if wait, next = restartWait(gap, 2*hi, lo, lo, hi); wait != gapRestartWait || next != lo {
		t.Fatalf("gap after a long run: wait %s, next %s", wait, next)
	}
	if wait, next = restartWait(storeDown, 2*hi, hi, lo, hi); wait != lo || next != 2*lo {
		t.Fatalf("failure after a long run: wait %s, next %s; want the backoff to start over", wait, next)
	}
}
