package bench_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/bench"
)

// TestRunTiny runs the whole benchmark at a tiny size and checks that the
// report has every measure with sane numbers. It does not check the
// targets: a CI machine's timings mean nothing.
func TestRunTiny(t *testing.T) {
	ctx := t.Context()
	opts := bench.Options{Size: 0.01, Tenants: 20, PoolTenants: 300, Dir: t.TempDir(), LagDuration: 3 * time.Second}
	if os.Getenv("TENANTWAL_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var progress bytes.Buffer
	start := time.Now()
	rep, err := bench.Run(ctx, opts, &progress)
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bench took %s", time.Since(start))
	if rep.Changes < 1000 {
		t.Errorf("backlog of %d changes, want at least 1000", rep.Changes)
	}
	for _, name := range []string{bench.MeasureCapture, bench.MeasureArchive, bench.MeasureRestore, bench.MeasureSnapshot} {
		m := rep.Measure(name)
		switch {
		case m == nil:
			t.Errorf("no %q in the report", name)
		case m.Skipped || m.Value <= 0 || m.Ceiling <= 0 || m.Ratio <= 0:
			t.Errorf("%q: value %v, ceiling %v, ratio %v: want all positive", name, m.Value, m.Ceiling, m.Ratio)
		}
	}
	for _, name := range []string{bench.MeasureRSSCapture, bench.MeasureRSSArchiver, bench.MeasureRSSCaptureTenants, bench.MeasureRSSArchiverTenants} {
		if m := rep.Measure(name); m == nil || m.Value < 1 || m.Value > 4096 {
			t.Errorf("%q: %+v, want a peak RSS between 1 MiB and 4 GiB", name, m)
		}
	}
	for _, name := range []string{bench.MeasureLagP50, bench.MeasureLagP99} {
		if m := rep.Measure(name); m == nil || m.Value <= 0 || m.Value > 60 {
			t.Errorf("%q: %+v, want a lag between 0 and 60 s", name, m)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back bench.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("report JSON does not decode: %v", err)
	}
	if len(back.Rows) != len(rep.Rows) {
		t.Errorf("JSON has %d rows, the report %d", len(back.Rows), len(rep.Rows))
	}
}

// TestRunSize runs the benchmark at the size in $TENANTWAL_BENCH_SIZE (1 is
// the default run) and prints the report; it is skipped without it. Until
// `tenantwal bench` exists:
//
//	TENANTWAL_BENCH_SIZE=1 go test ./internal/bench -run TestRunSize -v -timeout 30m
//
// $TENANTWAL_BENCH_CPUPROFILE names a file for a CPU profile of capture;
// $TENANTWAL_BENCH_FLUSH_INTERVAL and $TENANTWAL_BENCH_LAG_DURATION set
// Options.FlushInterval and Options.LagDuration.
func TestRunSize(t *testing.T) {
	size := os.Getenv("TENANTWAL_BENCH_SIZE")
	if size == "" {
		t.Skip("set TENANTWAL_BENCH_SIZE to run the benchmark")
	}
	s, err := strconv.ParseFloat(size, 64)
	if err != nil {
		t.Fatal(err)
	}
	opts := bench.Options{Size: s, CPUProfile: os.Getenv("TENANTWAL_BENCH_CPUPROFILE")}
	for env, d := range map[string]*time.Duration{"TENANTWAL_BENCH_FLUSH_INTERVAL": &opts.FlushInterval, "TENANTWAL_BENCH_LAG_DURATION": &opts.LagDuration} {
		if v := os.Getenv(env); v != "" {
			if *d, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%s: %v", env, err)
			}
		}
	}
	if os.Getenv("TENANTWAL_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	rep, err := bench.Run(t.Context(), opts, tWriter{t})
	if rep != nil {
		var b bytes.Buffer
		_ = rep.WriteTable(&b)
		_ = rep.WriteJSON(&b)
		t.Logf("\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
}

// tWriter logs each write to t.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
