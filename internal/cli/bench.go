package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tenantwal/tenantwal/internal/bench"
)

func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "bench", "bench [--size 1] [--json FILE] [flags]")
	var o bench.Options
	var jsonOut, logLevel string
	fs.Float64Var(&o.Size, "size", 1, "workload scale: 1 is a 1M-change backlog and a 1 GB transaction (about 4 minutes on 2 cores); 0.01 is a smoke test")
	fs.IntVar(&o.Tenants, "tenants", 100, "number of tenants, half pool and half bridge")
	fs.IntVar(&o.PoolTenants, "pool-tenants", 10_000, "number of pool tenants of the many-tenants memory measure (before the big transaction)")
	fs.StringVar(&o.Dir, "dir", "", "working directory (default a new temp dir, removed afterwards)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the working directory")
	fs.DurationVar(&o.FlushInterval, "flush-interval", 500*time.Millisecond, "the archiver's flush interval in the end-to-end instance (lag vs object count)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of capture decoding the backlog to this file")
	fs.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file (- for stdout)")
	fs.StringVar(&logLevel, "log-level", "warn", "log level of the pipeline")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, logLevel)
	if err != nil {
		return err
	}
	o.Logger = log
	rep, err := bench.Run(ctx, o, e.stderr)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(e.stdout); err != nil {
		return err
	}
	switch jsonOut {
	case "":
		return nil
	case "-":
		return rep.WriteJSON(e.stdout)
	}
	f, err := os.Create(jsonOut)
	if err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
