package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/tenantwal/tenantwal/internal/verify"
	"github.com/tenantwal/tenantwal/schemas"
)

// errProblems makes verify exit 1 after it printed its report.
type errProblems struct{ n int }

func (e errProblems) Error() string {
	return fmt.Sprintf("verify found %d problem(s); a restore that needs a damaged object refuses to run", e.n)
}

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "verify", "verify [--tenant T] [--quick] [--json] --store URL")
	var store storeFlags
	var tenant string
	var quick, asJSON bool
	store.register(fs)
	fs.StringVar(&tenant, "tenant", "", "check only this tenant (default every archived tenant)")
	fs.BoolVar(&quick, "quick", false, "only check that objects exist with the recorded size (no download)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	if err := parse(fs, args); err != nil {
		return err
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
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "checked %d tenant(s), %d manifest entries, %d objects, %d rows, %d bytes in %s\n",
			rep.Tenants, rep.Entries, rep.Objects, rep.Rows, rep.Bytes, st)
		for _, p := range rep.Problems {
			fmt.Fprintf(e.stdout, "PROBLEM %s\n", p)
		}
		for _, o := range rep.Orphans {
			fmt.Fprintf(e.stdout, "orphan  %s (no manifest names it: left by an interrupted flush; never read by a restore)\n", o)
		}
		if rep.OK() {
			fmt.Fprintln(e.stdout, "OK: every object the manifests name is present and intact")
		}
	}
	if !rep.OK() {
		return errProblems{len(rep.Problems)}
	}
	return nil
}
