package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/tenantwal/tenantwal/capture/pgrepl"
	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// Capture streams one source database into the bus.
type Capture struct {
	cfg     Config
	bus     *bus.Bus
	store   objstore.Store
	router  *route.Router
	log     *slog.Logger
	metrics *Metrics

	// snap is what this run's initial snapshot saw (nil without one); the
	// processor starts from it.
	snap *snapInfo

	confirmed atomic.Uint64 // slot position that may be confirmed
	received  atomic.Uint64 // last WAL position received
}

// Option configures optional collaborators.
type Option func(*Capture)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Capture) { c.log = l } }

// WithMetrics sets the metrics (default: unregistered).
func WithMetrics(m *Metrics) Option { return func(c *Capture) { c.metrics = m } }

// New returns a capture for cfg publishing to b. The store is read for the
// archived watermarks (which bound the slot's confirmed position) and written
// with the baseline once the initial snapshot is archived.
func New(cfg Config, b *bus.Bus, store objstore.Store, opts ...Option) (*Capture, error) {
	if b != nil {
		cfg.Partitions = b.Partitions()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b != nil && cfg.ChunkBytes > b.MaxPayload()/2 {
		// Leave room for the batch header and the schemas a chunk carries.
		cfg.ChunkBytes = b.MaxPayload() / 2
	}
	r, err := route.New(cfg.Route)
	if err != nil {
		return nil, err
	}
	c := &Capture{cfg: cfg, bus: b, store: store, router: r, log: slog.New(slog.DiscardHandler), metrics: NewMetrics(nil)}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// FatalError is an error that retrying cannot fix.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

// Run captures until ctx is cancelled. Connection failures are retried with
// backoff (the slot resumes at the archived watermark); a *FatalError or a
// preflight failure is returned at once.
func (c *Capture) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		start := time.Now()
		err := c.runOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fatal *FatalError
		var pre *PreflightError
		if errors.As(err, &fatal) || errors.As(err, &pre) {
			return err
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		c.metrics.interruptions.Inc()
		c.log.Warn("capture interrupted; resuming from the slot", slog.Any("error", err), slog.Duration("retry_in", backoff))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

type slotState struct {
	exists    bool
	confirmed schemas.LSN
	active    bool
	walStatus string // pg_replication_slots.wal_status: "lost" once invalidated
}

func readSlot(ctx context.Context, conn *pgx.Conn, slot string) (slotState, error) {
	var s slotState
	var lsn *string
	var status *string
	err := conn.QueryRow(ctx, `SELECT confirmed_flush_lsn::text, active, wal_status FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&lsn, &s.active, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read slot %s: %w", slot, err)
	}
	s.exists = true
	if status != nil {
		s.walStatus = *status
	}
	if lsn != nil {
		if s.confirmed, err = schemas.ParseLSN(*lsn); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (c *Capture) runOnce(ctx context.Context) error {
	sqlConn, err := connectSQL(ctx, c.cfg.DSN)
	if err != nil {
		return err
	}
	defer sqlConn.Close(context.WithoutCancel(ctx))
	var pubExists bool
	if err := sqlConn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, c.cfg.Publication).Scan(&pubExists); err != nil {
		return err
	}
	if !pubExists {
		return &FatalError{fmt.Errorf("publication %q does not exist: run `tenantwal init` first", c.cfg.Publication)}
	}
	if err := preflight(ctx, sqlConn, c.cfg); err != nil {
		return err
	}
	timeout, err := c.receiveTimeout(ctx, sqlConn)
	if err != nil {
		return err
	}
	rconn, err := pgrepl.Connect(ctx, c.cfg.DSN)
	if err != nil {
		return fmt.Errorf("open replication connection: %w", err)
	}
	defer rconn.Close(context.WithoutCancel(ctx))
	sys, err := pgrepl.IdentifySystem(ctx, rconn)
	if err != nil {
		return err
	}
	pub, err := newPublisher(c.bus.Conn(), c.bus.Config().SubjectPrefix, c.cfg.Partitions, c.log, c.metrics)
	if err != nil {
		return err
	}
	slot, snap, err := c.prepareSlot(ctx, rconn, sqlConn, sys)
	if err != nil {
		return err
	}
	var snapTime time.Time
	if snap != nil {
		snapTime = snap.at
	}
	c.confirmed.Store(uint64(slot.confirmed))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.runAcks(gctx) })
	g.Go(func() error { return pub.runMarkers(gctx, c.cfg.MarkerInterval) })
	var pending *schemas.Baseline
	if snap != nil {
		pending = snap.baseline(sys, c.cfg)
	}
	g.Go(func() error { return c.runConfirm(gctx, slot.confirmed, pending) })
	g.Go(func() error { return c.runHeartbeat(gctx) })
	g.Go(func() error { return c.bus.WatchDisconnect(gctx) }) // the stream may have lost acknowledged messages: resume from the slot
	g.Go(func() error {
		if snap != nil {
			if err := c.snapshot(gctx, pub, snap.SnapshotName, snap.ConsistentPoint, snapTime); err != nil {
				return err
			}
		}
		return c.stream(gctx, rconn, sqlConn, pub, timeout)
	})
	return g.Wait()
}

// checkSlotBehindArchive refuses to stream when the slot was confirmed past
// what the archive holds (PITFALLS 3): changes in between are lost.
// A slot at its creation point, just past the baseline, is behind.
func (c *Capture) checkSlotBehindArchive(ctx context.Context, confirmed schemas.LSN, base *schemas.Baseline) error {
	wms, err := catalog.ReadWatermarks(ctx, c.store)
	if err != nil {
		return err
	}
	low, ok := lowWatermark(wms, c.cfg.Partitions)
	if ok && confirmed > low.EndLSN && (base == nil || confirmed > base.LSN+1) {
		return &FatalError{fmt.Errorf("slot %s is confirmed up to %s but the archive at %s only holds changes up to %s: the slot was advanced by something else and changes in between are lost (a gap)",
			c.cfg.Slot, confirmed, c.store, low.EndLSN)}
	}
	return nil
}

// lowWatermark returns the lowest watermark over all partitions, if every
// partition has one for this partition count.
func lowWatermark(wms map[int]*schemas.Watermark, partitions int) (*schemas.Watermark, bool) {
	var low *schemas.Watermark
	for p := range partitions {
		w := wms[p]
		if w == nil || w.Partitions != partitions {
			return nil, false
		}
		if low == nil || w.EndLSN < low.EndLSN {
			low = w
		}
	}
	return low, low != nil
}

// runConfirm reads the archived watermarks back and moves the position the
// receiver confirms to the slot; once every partition has archived the
// initial snapshot it writes the baseline.
func (c *Capture) runConfirm(ctx context.Context, floor schemas.LSN, pending *schemas.Baseline) error {
	t := time.NewTicker(c.cfg.ConfirmInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		wms, err := catalog.ReadWatermarks(ctx, c.store)
		if err != nil {
			c.log.Warn("cannot read archived watermarks; the slot is not advanced", slog.Any("error", err))
			continue
		}
		low, ok := lowWatermark(wms, c.cfg.Partitions)
		if !ok {
			continue
		}
		if pending != nil {
			if low.CommitLSN < pending.LSN {
				continue
			}
			if err := catalog.WriteBaseline(ctx, c.store, pending); err != nil {
				c.log.Warn("cannot write the archive baseline yet", slog.Any("error", err))
				continue
			}
			c.log.Info("initial snapshot archived; baseline written", slog.String("lsn", pending.LSN.String()))
			pending = nil
		}
		if low.EndLSN > floor && uint64(low.EndLSN) > c.confirmed.Load() {
			c.confirmed.Store(uint64(low.EndLSN))
			c.metrics.confirmed.Set(float64(low.EndLSN))
		}
	}
}

// runHeartbeat writes a transactional logical message on an interval so an
// idle source still produces commits: the slot and every tenant's
// complete-up-to time keep moving (PITFALLS 6).
func (c *Capture) runHeartbeat(ctx context.Context) error {
	if c.cfg.Heartbeat < 0 {
		return nil
	}
	conn, err := connectSQL(ctx, c.cfg.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if _, err := conn.Exec(ctx, `SELECT pg_logical_emit_message(true, 'tenantwal.heartbeat', '')`); err != nil {
			return fmt.Errorf("write heartbeat: %w", err)
		}
	}
}
