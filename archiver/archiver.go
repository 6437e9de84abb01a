package archiver

import (
	"context"
	"fmt"
	"log/slog"

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
}

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
	a := &Archiver{cfg: cfg, bus: b, store: store, log: slog.New(slog.DiscardHandler), metrics: NewMetrics(nil)}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Run archives until ctx is cancelled or a worker fails. A failed worker
// leaves its unacknowledged messages in the stream for the next run.
func (a *Archiver) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range a.cfg.Partitions {
		g.Go(func() error {
			cons, err := a.bus.Consumer(gctx, p, fmt.Sprintf("%s-p%04d", a.cfg.Durable, p))
			if err != nil {
				return fmt.Errorf("partition %d: %w", p, err)
			}
			w := newWorker(a, p, cons)
			if err := w.run(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("partition %d: %w", p, err)
			}
			return nil
		})
	}
	return g.Wait()
}
