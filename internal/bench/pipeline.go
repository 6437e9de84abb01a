package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/capture"
	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
)

// publication is the one publication every instance reads.
const publication = "tenantwal"

// Metric names the bench reads.
const (
	captureChanges = "tenantwal_capture_changes_total"
	archiverRows   = "tenantwal_archiver_rows_total"
	flushSeconds   = "tenantwal_archiver_flush_seconds"
	// archiverRestarts counts partition workers restarted after a failure.
	archiverRestarts = "tenantwal_archiver_worker_restarts_total"
)

// instance is one tenantwal deployment: its own slot, embedded NATS and
// file:// archive, against the shared source database.
type instance struct {
	name  string
	dir   string
	ccfg  capture.Config
	acfg  archiver.Config
	bus   *bus.Bus
	store objstore.Store
	log   *slog.Logger
}

func openInstance(ctx context.Context, dir, name, dsn string, log *slog.Logger) (*instance, error) {
	dir = filepath.Join(dir, name)
	store, err := objstore.Open(ctx, "file://"+filepath.Join(dir, "archive"), objstore.S3Options{})
	if err != nil {
		return nil, err
	}
	b, err := bus.Open(ctx, bus.Config{StoreDir: filepath.Join(dir, "nats")}, log.With("component", name+"/bus"))
	if err != nil {
		return nil, errors.Join(err, store.Close())
	}
	return &instance{
		name: name, dir: dir, bus: b, store: store, log: log,
		ccfg: capture.Config{DSN: dsn, Slot: "tw_" + name, Publication: publication, Heartbeat: 500 * time.Millisecond,
			ConfirmInterval: 500 * time.Millisecond, Route: route.Config{Model: route.Mixed}},
		acfg: archiver.Config{FlushInterval: time.Second, SpillDir: dir},
	}, nil
}

func (in *instance) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return errors.Join(in.bus.Close(ctx), in.store.Close())
}

// running is a started capture and/or archiver with its own metrics.
type running struct {
	cancel context.CancelFunc
	g      *errgroup.Group
	done   chan struct{}
	err    error
	reg    *prometheus.Registry
}

// start runs capture and/or the archiver of in until stop.
func (in *instance) start(ctx context.Context, withCapture, withArchiver bool) (*running, error) {
	reg := prometheus.NewRegistry()
	var c *capture.Capture
	var a *archiver.Archiver
	var err error
	if withCapture {
		c, err = capture.New(in.ccfg, in.bus, in.store, capture.WithMetrics(capture.NewMetrics(reg)),
			capture.WithLogger(in.log.With("component", in.name+"/capture")))
		if err != nil {
			return nil, err
		}
	}
	if withArchiver {
		a, err = archiver.New(in.acfg, in.bus, in.store, archiver.WithMetrics(archiver.NewMetrics(reg)),
			archiver.WithLogger(in.log.With("component", in.name+"/archiver")))
		if err != nil {
			return nil, err
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(rctx)
	if c != nil {
		g.Go(func() error { return c.Run(gctx) })
	}
	if a != nil {
		g.Go(func() error { return a.Run(gctx) })
	}
	r := &running{cancel: cancel, g: g, done: make(chan struct{}), reg: reg}
	go func() {
		r.err = g.Wait()
		close(r.done)
	}()
	return r, nil
}

// stop cancels and waits; a stop by cancellation is not an error.
func (r *running) stop() error {
	r.cancel()
	<-r.done
	if r.err != nil && !errors.Is(r.err, context.Canceled) {
		return fmt.Errorf("pipeline: %w", r.err)
	}
	return nil
}

// counter returns the current value of the counter named name, 0 if it
// has not been registered.
func (r *running) counter(name string) (float64, error) {
	mfs, err := r.reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue(), nil
		}
	}
	return 0, nil
}

// counters describes the pipeline's main counters, for errors.
func (r *running) counters() string {
	var out []string
	for _, name := range []string{captureChanges, "tenantwal_archiver_messages_total", archiverRows,
		"tenantwal_archiver_duplicate_changes_total", archiverRestarts, "tenantwal_archiver_store_failures_total"} {
		v, err := r.counter(name)
		if err != nil {
			return err.Error()
		}
		out = append(out, fmt.Sprintf("%s %.0f", name, v))
	}
	return strings.Join(out, ", ")
}

// histogram returns the sample count and sum of the histogram named name,
// zeros if it has not been registered.
func (r *running) histogram(name string) (count, sum float64, err error) {
	mfs, err := r.reg.Gather()
	if err != nil {
		return 0, 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			h := mf.GetMetric()[0].GetHistogram()
			return float64(h.GetSampleCount()), h.GetSampleSum(), nil
		}
	}
	return 0, 0, nil
}

// waitCounter polls the counter every few milliseconds until it reaches
// want and returns when it did; it fails when the pipeline stops, ctx
// ends or timeout passes.
func (r *running) waitCounter(ctx context.Context, name string, want float64, timeout time.Duration) (time.Time, error) {
	return r.waitFor(ctx, timeout, fmt.Sprintf("%s to reach %.0f", name, want), func() (bool, error) {
		v, err := r.counter(name)
		return v >= want, err
	})
}

// waitFor polls cond every 5ms until it holds and returns the time it
// first held.
func (r *running) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return time.Time{}, err
		}
		if ok {
			return time.Now(), nil
		}
		select {
		case <-tick.C:
		case <-r.done:
			return time.Time{}, fmt.Errorf("waiting for %s: the pipeline stopped: %w", what, r.err)
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("timed out after %s waiting for %s (%s)", timeout, what, r.counters())
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// takeBaseline runs capture and archiver until the archive has its
// baseline (the initial snapshot is archived), then stops them.
func (in *instance) takeBaseline(ctx context.Context, timeout time.Duration) error {
	if err := capture.Init(ctx, in.ccfg); err != nil {
		return err
	}
	r, err := in.start(ctx, true, true)
	if err != nil {
		return err
	}
	_, err = r.waitFor(ctx, timeout, in.name+"'s baseline", func() (bool, error) {
		_, err := catalog.ReadBaseline(ctx, in.store)
		if errors.Is(err, objstore.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	return errors.Join(err, r.stop())
}
