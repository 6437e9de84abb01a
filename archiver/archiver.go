package archiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/objstore"
)

// Archiver runs one worker per owned partition.
type Archiver struct {
	cfg     Config
	bus     *bus.Bus
	store   objstore.Store
	log     *slog.Logger
	metrics *Metrics
	// buffered is what all partition workers buffer together (worker.account).
	buffered atomic.Int64
	// commits holds a token per tenant commit running in any partition
	// (CommitConcurrency at most).
	commits chan struct{}
	// wrapConsumer, set by tests only (export_test.go), wraps each
	// partition's consumer, to lose deliveries on purpose.
	wrapConsumer func(jetstream.Consumer) jetstream.Consumer
}

// acquireCommit waits for a commit slot, or for ctx to end.
func (a *Archiver) acquireCommit(ctx context.Context) error {
	select {
	case a.commits <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (a *Archiver) releaseCommit() { <-a.commits }

// Option configures optional collaborators.
type Option func(*Archiver)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(a *Archiver) { a.log = l } }

// WithMetrics sets the metrics (default: unregistered).
func WithMetrics(m *Metrics) Option { return func(a *Archiver) { a.metrics = m } }

// New returns an archiver consuming b into store.
func New(cfg Config, b *bus.Bus, store objstore.Store, opts ...Option) (*Archiver, error) {
	if err := cfg.Validate(b.Partitions()); err != nil {
		return nil, err
	}
	cfg.FetchBytes = max(cfg.FetchBytes, bus.PullBytes(b.MaxPayload()))
	a := &Archiver{cfg: cfg, bus: b, store: store, log: slog.New(slog.DiscardHandler), metrics: NewMetrics(nil),
		commits: make(chan struct{}, cfg.CommitConcurrency)}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Run archives until ctx is cancelled. A partition worker that fails (the
// object store or NATS unavailable, a gap in deliveries) drops what it
// buffered, acknowledges nothing more, and starts again from the
// partition's last acknowledged message after a backoff, so a backlog is
// held in the stream until the store is back. A flush in progress when ctx
// is cancelled is completed first (bounded by FlushTimeout).
func (a *Archiver) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range a.cfg.Partitions {
		g.Go(func() error { return a.runPartition(gctx, p) })
	}
	return g.Wait()
}

// runPartition runs partition p's worker, restarting it after failures.
func (a *Archiver) runPartition(ctx context.Context, p int) error {
	log := a.log.With(slog.Int("partition", p))
	backoff := a.cfg.RetryMin
	for {
		start := time.Now()
		pullUntil, err := a.runWorker(ctx, p)
		if ctx.Err() != nil {
			return nil
		}
		a.metrics.restarts.Inc()
		var wait time.Duration
		wait, backoff = restartWait(err, time.Since(start), backoff, a.cfg.RetryMin, a.cfg.RetryMax)
		// The next worker resets the consumer to its ack floor; a pull of
		// this one still waiting in the server would take the deliveries
		// after the reset into a fetch nobody reads.
		wait = max(wait, time.Until(pullUntil.Add(pullSlack)))
		if errors.Is(err, errDeliveryGap) {
			log.Info("a delivery was lost on the way to the partition worker; restarting from the last acknowledged message",
				slog.Any("error", err))
		} else {
			log.Warn("partition worker failed; restarting from the last acknowledged message",
				slog.Any("error", err), slog.Duration("backoff", wait))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// pullSlack is how long past its expiry a pull may still take deliveries
// (the server times it from when it processes the request).
const pullSlack = 250 * time.Millisecond

// gapRestartWait is the pause before a worker restarts after a delivery gap
// (at least until the worker's last pull has expired).
const gapRestartWait = 50 * time.Millisecond

// restartWait returns how long to wait before restarting a worker that
// failed with err after running for ran, and the backoff for the next
// failure. Failures back off exponentially from retryMin to retryMax (reset
// after a run longer than retryMax). A delivery gap (a pull response lost
// on the way, typical of a loaded machine) is not a failure of the store or
// of NATS: the worker restarts from the ack floor (once its last pull has
// expired, runPartition) without growing the backoff, so repeated gaps cannot stall a partition for retryMax each.
func restartWait(err error, ran, backoff, retryMin, retryMax time.Duration) (wait, next time.Duration) {
	if ran > retryMax {
		backoff = retryMin // it ran well for a while
	}
	if errors.Is(err, errDeliveryGap) {
		return gapRestartWait, backoff
	}
	return backoff, min(2*backoff, retryMax)
}

// runWorker runs a worker of partition p until it fails; pullUntil is
// when its last pull expires in the server.
func (a *Archiver) runWorker(ctx context.Context, p int) (pullUntil time.Time, err error) {
	// Bus.Consumer resets the durable to its ack floor: every message not
	// acknowledged (not durable in the store) is delivered again, in order.
	cons, err := a.bus.Consumer(ctx, p, fmt.Sprintf("%s-p%04d", a.cfg.Durable, p))
	if err != nil {
		return time.Time{}, fmt.Errorf("partition %d: %w", p, err)
	}
	if a.wrapConsumer != nil {
		cons = a.wrapConsumer(cons)
	}
	w := newWorker(a, p, cons)
	err = w.run(ctx)
	a.buffered.Add(-int64(w.bytes)) // dropped: delivered again after the restart
	if err != nil {
		return w.pullUntil, fmt.Errorf("partition %d: %w", p, err)
	}
	return w.pullUntil, nil
}
