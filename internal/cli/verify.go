package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tenantwal/tenantwal/internal/verify"
	"github.com/tenantwal/tenantwal/schemas"
)

// errProblems makes verify exit 1 after it printed its report.
type errProblems struct{ n int }

func (e errProblems) Error() string {
	return fmt.Sprintf("verify found %d problem(s); a restore that needs a damaged object refuses to run", e.n)
}

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "verify", "verify [--tenant T] [--quick] [--json] [--sample-restore --dsn DSN] --store URL")
	var store storeFlags
	var rt routeFlags
	var tenant, dsn, publication string
	var quick, asJSON, sample bool
	var sampleWait time.Duration
	store.register(fs)
	rt.register(fs)
	fs.BoolVar(&sample, "sample-restore", false, "also restore one tenant (--tenant, else a random one) at the LSN of a fresh snapshot of --dsn into a scratch schema there and compare every table with the source; capture and archive must be running")
	fs.StringVar(&dsn, "dsn", "", "source PostgreSQL connection string, for --sample-restore")
	fs.StringVar(&publication, "publication", "tenantwal", "publication name, for --sample-restore")
	fs.DurationVar(&sampleWait, "sample-wait", 2*time.Minute, "how long --sample-restore waits for the archive to reach the snapshot's LSN")
	fs.StringVar(&tenant, "tenant", "", "check only this tenant (default every archived tenant)")
	fs.BoolVar(&quick, "quick", false, "only check that objects exist with the recorded size (no download)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	var sampleOpts verify.SampleOptions
	if sample {
		if dsn == "" {
			return errors.New("--sample-restore needs the source database: pass --dsn or set TENANTWAL_DSN")
		}
		rc, err := rt.config()
		if err != nil {
			return err
		}
		sampleOpts = verify.SampleOptions{DSN: dsn, Publication: publication, Route: rc, Tenant: schemas.TenantID(tenant),
			Wait: sampleWait, TempDir: os.TempDir()}
	}
	st, err := store.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	var ids []schemas.TenantID
	if tenant != "" {
		ids = []schemas.TenantID{schemas.TenantID(tenant)}
	}
	rep, err := verify.Tenants(ctx, st, ids, verify.Options{Quick: quick, TempDir: os.TempDir()})
	if err != nil {
		return err
	}
	var srep *verify.SampleReport
	if sample {
		if srep, err = verify.Sample(ctx, st, sampleOpts); err != nil {
			return err
		}
	}
	problems := len(rep.Problems)
	if srep != nil {
		problems += len(srep.Problems)
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		out := struct {
			*verify.Report
			Sample *verify.SampleReport `json:"sample_restore,omitempty"`
		}{rep, srep}
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "checked %d tenant(s), %d manifest entries, %d objects, %d rows, %d bytes in %s\n",
			rep.Tenants, rep.Entries, rep.Objects, rep.Rows, rep.Bytes, st)
		if err := printGaps(e, rep.Gaps); err != nil {
			return err
		}
		if rep.Pending != "" {
			fmt.Fprintf(e.stdout, "pending %s\n", rep.Pending)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(e.stdout, "PROBLEM %s\n", p)
		}
		for _, o := range rep.Orphans {
			fmt.Fprintf(e.stdout, "orphan  %s (no manifest names it: left by an interrupted flush; never read by a restore)\n", o)
		}
		if rep.OK() {
			fmt.Fprintln(e.stdout, "OK: every object the manifests name is present and intact")
		}
		if srep != nil {
			printSample(e, srep)
		}
	}
	if problems > 0 {
		return errProblems{problems}
	}
	return nil
}

func printSample(e *env, r *verify.SampleReport) {
	fmt.Fprintf(e.stdout, "sample restore of tenant %q at LSN %s (a fresh snapshot of the source):\n", r.Tenant, r.LSN)
	for _, t := range r.Tables {
		mark := "ok  "
		if t.Restored != t.Source {
			mark = "DIFF"
		}
		fmt.Fprintf(e.stdout, "  %s %s: restored %s, source %s\n", mark, t.Name, t.Restored, t.Source)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(e.stdout, "PROBLEM %s\n", p)
	}
	if r.OK() {
		fmt.Fprintf(e.stdout, "OK: the sample restore equals the source row for row (%d tables)\n", len(r.Tables))
	}
}
