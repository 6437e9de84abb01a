package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/schemas"
)

// lagTarget is the bound on the p99 commit → durable lag.
const lagTarget = 2 * time.Second

// lag runs a steady load at half the pg_recvlogical ceiling while capture
// and archiver run, then reads when each change became durable.
//
// A change is durable when the manifest entry naming it is in the store: the
// entry is written after its objects. The file store's modification time of
// the entry is that moment. An entry holds changes committed between its
// MinTime and MaxTime; their commit times are taken as evenly spread over
// that span (ten points per entry, weighted by its rows).
func (r *runner) lag(ctx context.Context) error {
	rate := r.ceiling / 2
	g := newGenerator(r.dsn, r.tenants, r.opts.Workers)
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var from time.Time
	if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&from); err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, r.opts.LagDuration)
	start, cpu := time.Now(), sampleCPU(r.srv.Pid())
	progress := r.sampleProgress(lctx, g)
	flushes0, flushSum0, _ := r.e2eRun.histogram(flushSeconds)
	err = g.run(lctx, 0, rate, 2)
	cancel()
	if err != nil {
		return err
	}
	took := time.Since(start)
	cpuNote := cpu.since(r.srv.Pid())
	achieved := float64(g.changes.Load()) / took.Seconds()
	if _, err := r.e2eRun.waitCounter(ctx, archiverRows, float64(r.changes+g.changes.Load()), r.waitTimeout()); err != nil {
		return err
	}
	// The last rows are written; their manifest entries follow at once.
	if _, err := r.e2eRun.waitFor(ctx, r.waitTimeout(), "the last manifest entries", func() (bool, error) {
		s, err := r.lagSamples(ctx, from)
		if err != nil {
			return false, err
		}
		var rows float64
		for _, x := range s {
			rows += x.weight
		}
		return int64(rows+0.5) >= g.changes.Load(), nil
	}); err != nil {
		return err
	}
	s, err := r.lagSamples(ctx, from)
	if err != nil {
		return err
	}
	p50, p99 := percentile(s, 0.50), percentile(s, 0.99)
	samples := <-progress
	flushes, flushSum, _ := r.e2eRun.histogram(flushSeconds)
	flushes, flushSum = flushes-flushes0, flushSum-flushSum0
	restarts, _ := r.e2eRun.counter(archiverRestarts)
	note := fmt.Sprintf("%d changes over %s at %.0f changes/s (asked for %.0f, half the ceiling; %s); flush interval %s; "+
		"a change is durable when the manifest entry naming it is stored (the entry file's mtime, written after its objects). "+
		"Of that, commit → published to NATS by capture: %s; commit → rows written by the archiver: %s; %d archiver flushes (16 partitions) took %s on average; "+
		"archiver partition restarts since the pipeline started: %.0f",
		g.changes.Load(), took.Round(time.Millisecond), achieved, rate, cpuNote, r.e2e.acfg.FlushInterval,
		stageDelay(samples, func(x progressSample) float64 { return x.captured }),
		stageDelay(samples, func(x progressSample) float64 { return x.archived }),
		int(flushes), (time.Duration(flushSum / max(1, flushes) * float64(time.Second))).Round(time.Millisecond), restarts)
	r.rep.Rows = append(r.rep.Rows,
		Measure{Name: MeasureLagP50, Value: p50.Seconds(), Unit: "s", Target: "-", Met: true, Note: note},
		Measure{Name: MeasureLagP99, Value: p99.Seconds(), Unit: "s", Target: "< 2 s", Met: p99 < lagTarget})
	r.printf("lag p50 %s, p99 %s; %s", p50.Round(time.Millisecond), p99.Round(time.Millisecond), note)
	return nil
}

type lagSample struct {
	lag    time.Duration
	weight float64
}

// lagSamples reads every tenant's segment entries with changes committed
// at or after from.
func (r *runner) lagSamples(ctx context.Context, from time.Time) ([]lagSample, error) {
	var out []lagSample
	for _, t := range r.tenants {
		id := schemas.TenantID(t.ID)
		entries, err := catalog.ReadManifest(ctx, r.e2e.store, id)
		if errors.Is(err, catalog.ErrUnknownTenant) {
			continue // no rows and no changes yet (tiny sizes)
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Kind != schemas.EntrySegment || e.MinTime.Before(from) {
				continue
			}
			info, err := r.e2e.store.Stat(ctx, schemas.ManifestKey(id, e.Seq))
			if err != nil {
				return nil, err
			}
			var rows int64
			for _, o := range e.Objects {
				rows += o.Rows
			}
			const points = 10
			span := e.MaxTime.Sub(e.MinTime)
			for i := range points {
				commit := e.MinTime.Add(time.Duration((float64(i) + 0.5) / points * float64(span)))
				out = append(out, lagSample{lag: info.ModTime.Sub(commit), weight: float64(rows) / points})
			}
		}
	}
	return out, nil
}

// percentile returns the weighted q-quantile of s's lags.
func percentile(s []lagSample, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b lagSample) int { return cmp.Compare(a.lag, b.lag) })
	var total float64
	for _, x := range s {
		total += x.weight
	}
	var acc float64
	for _, x := range s {
		acc += x.weight
		if acc >= q*total {
			return x.lag
		}
	}
	return s[len(s)-1].lag
}

// progressSample is the pipeline's progress at one moment of the lag
// measure, counted from the measure's start.
type progressSample struct {
	at                 time.Time
	committed          float64 // changes the workload has committed
	captured, archived float64 // changes published by capture, rows written by the archiver
}

// sampleProgress samples the workload's and the pipeline's counters every
// 10ms until ctx ends and the pipeline has caught up (at most 30s more),
// then sends the samples.
func (r *runner) sampleProgress(ctx context.Context, g *generator) <-chan []progressSample {
	out := make(chan []progressSample, 1)
	run := r.e2eRun
	c0, _ := run.counter(captureChanges)
	a0, _ := run.counter(archiverRows)
	go func() {
		var s []progressSample
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var deadline time.Time
		for range tick.C {
			c, err1 := run.counter(captureChanges)
			a, err2 := run.counter(archiverRows)
			if err1 != nil || err2 != nil {
				break
			}
			x := progressSample{at: time.Now(), committed: float64(g.changes.Load()), captured: c - c0, archived: a - a0}
			s = append(s, x)
			if ctx.Err() != nil {
				if deadline.IsZero() {
					deadline = time.Now().Add(30 * time.Second)
				}
				if x.archived >= x.committed || time.Now().After(deadline) {
					break
				}
			}
		}
		out <- s
	}()
	return out
}

// stageDelay describes how long a pipeline stage's counter took to reach
// the workload's committed count, p50 and p99 over the samples: with
// changes in commit order, that is how long after its commit a change
// passed the stage.
func stageDelay(s []progressSample, count func(progressSample) float64) string {
	var d []lagSample
	j := 0
	for i, x := range s {
		if x.committed == 0 {
			continue
		}
		// The workload counts a round trip's transactions after it
		// returns, when capture may have published them already: such a
		// change passed the stage no later than it was counted (delay 0),
		// never before.
		j = max(j, i)
		for j < len(s) && count(s[j]) < x.committed {
			j++
		}
		if j == len(s) {
			break
		}
		d = append(d, lagSample{lag: s[j].at.Sub(x.at), weight: 1})
	}
	if len(d) == 0 {
		return "not measured"
	}
	return fmt.Sprintf("p50 %s, p99 %s", percentile(d, 0.5).Round(time.Millisecond), percentile(d, 0.99).Round(time.Millisecond))
}
