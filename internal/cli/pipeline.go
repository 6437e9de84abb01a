package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tenantwal/tenantwal/archiver"
	"github.com/tenantwal/tenantwal/capture"
	"github.com/tenantwal/tenantwal/internal/bus"
	"github.com/tenantwal/tenantwal/internal/objstore"
)

func runInit(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "init", "init --dsn DSN [flags]")
	var src sourceFlags
	var com commonFlags
	src.register(fs)
	com.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := src.config()
	if err != nil {
		return err
	}
	if err := pingPG(ctx, cfg.DSN, "dsn"); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, com.logLevel)
	if err != nil {
		return err
	}
	if err := capture.Init(ctx, cfg, capture.WithLogger(log)); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "source ready: publication %q exists; capture creates slot %q and takes the initial snapshot on its first start\n", cfg.Publication, cfg.Slot)
	return nil
}

// pipelineFlags are the flags of run, capture and archive.
type pipelineFlags struct {
	src      sourceFlags
	store    storeFlags
	bus      busFlags
	com      commonFlags
	arch     archiver.Config
	memLimit int // MiB
}

func (f *pipelineFlags) registerArchiver(fs *flag.FlagSet) {
	fs.DurationVar(&f.arch.FlushInterval, "flush-interval", 5*time.Second, "longest time a change waits before it is durable in the archive")
	fs.IntVar(&f.arch.FlushBytes, "flush-bytes", 8<<20, "flush a partition early when its buffer reaches this many bytes")
	fs.IntVar(&f.arch.BufferBytes, "buffer-bytes", 32<<20, "bound on what all partitions buffer together; past it, partitions holding their share flush early")
	fs.IntVar(&f.arch.CommitConcurrency, "commit-concurrency", 8, "how many tenants' objects and manifest entries are written at once, across all partitions (overlaps fsyncs and S3 round trips; each holds one Parquet writer)")
	fs.StringVar(&f.arch.SpillDir, "spill-dir", "", "directory for Parquet files being written (default the system temp dir)")
}

// registerMemory registers --memory-limit-mib.
func (f *pipelineFlags) registerMemory(fs *flag.FlagSet) {
	fs.IntVar(&f.memLimit, "memory-limit-mib", 192, "soft memory limit of the Go runtime in MiB: the heap is collected harder near it instead of doubling (0: the Go default; GOMEMLIMIT wins when set)")
}

// applyMemoryLimit sets the runtime's soft memory limit unless GOMEMLIMIT
// is set: without one, a heap of buffered rows can double before it is
// collected.
func (f *pipelineFlags) applyMemoryLimit(log *slog.Logger) {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok || f.memLimit <= 0 {
		return
	}
	debug.SetMemoryLimit(int64(f.memLimit) << 20)
	log.Debug("soft memory limit", slog.Int("mib", f.memLimit))
}

// pipeline holds what run, capture and archive open.
type pipeline struct {
	log   *slog.Logger
	store objstore.Store
	bus   *bus.Bus
	reg   prometheus.Registerer
}

func (f *pipelineFlags) open(ctx context.Context, e *env, needURL bool) (*pipeline, error) {
	log, err := newLogger(e.stderr, f.com.logLevel)
	if err != nil {
		return nil, err
	}
	if needURL && f.bus.cfg.URL == "" {
		return nil, errors.New("no NATS server: pass --nats nats://HOST:4222 (a server started with -js), or run capture and archiver together with `tenantwal run`, which embeds one")
	}
	f.applyMemoryLimit(log)
	p := &pipeline{log: log}
	if p.reg, err = f.com.serveMetrics(ctx, log); err != nil {
		return nil, err
	}
	if p.store, err = f.store.open(ctx); err != nil {
		return nil, err
	}
	if p.bus, err = f.bus.open(ctx, log, !needURL); err != nil {
		p.store.Close()
		return nil, err
	}
	return p, nil
}

func (p *pipeline) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(p.bus.Close(ctx), p.store.Close())
}

func (p *pipeline) capture(ctx context.Context, cfg capture.Config) (*capture.Capture, error) {
	if err := pingPG(ctx, cfg.DSN, "dsn"); err != nil {
		return nil, err
	}
	if err := capture.Init(ctx, cfg, capture.WithLogger(p.log.With("component", "capture"))); err != nil {
		return nil, err
	}
	return capture.New(cfg, p.bus, p.store, capture.WithLogger(p.log.With("component", "capture")), capture.WithMetrics(capture.NewMetrics(p.reg)))
}

func (p *pipeline) archiver(cfg archiver.Config) (*archiver.Archiver, error) {
	return archiver.New(cfg, p.bus, p.store, archiver.WithLogger(p.log.With("component", "archiver")), archiver.WithMetrics(archiver.NewMetrics(p.reg)))
}

func runRun(ctx context.Context, e *env, args []string) error {
	return runPipeline(ctx, e, args, "run", true, true)
}

func runCapture(ctx context.Context, e *env, args []string) error {
	return runPipeline(ctx, e, args, "capture", true, false)
}

func runArchive(ctx context.Context, e *env, args []string) error {
	return runPipeline(ctx, e, args, "archive", false, true)
}

func runPipeline(ctx context.Context, e *env, args []string, name string, withCapture, withArchiver bool) error {
	fs := newFlagSet(e, name, name+" [flags]")
	var f pipelineFlags
	if withCapture {
		f.src.register(fs)
	}
	if withArchiver {
		f.registerArchiver(fs)
	}
	f.store.register(fs)
	f.bus.register(fs)
	f.com.register(fs)
	f.registerMemory(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	var ccfg capture.Config
	if withCapture {
		var err error
		if ccfg, err = f.src.config(); err != nil {
			return err
		}
	}
	p, err := f.open(ctx, e, !(withCapture && withArchiver))
	if err != nil {
		return err
	}
	defer p.close()
	g, gctx := errgroup.WithContext(ctx)
	if withCapture {
		c, err := p.capture(ctx, ccfg)
		if err != nil {
			return err
		}
		g.Go(func() error { return c.Run(gctx) })
	}
	if withArchiver {
		a, err := p.archiver(f.arch)
		if err != nil {
			return err
		}
		g.Go(func() error { return a.Run(gctx) })
	}
	p.log.Info("running", "command", name, "store", p.store.String(), "nats", p.bus.ClientURL())
	err = g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		p.log.Info("stopped")
		return nil
	}
	return err
}
