package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/schemas"
)

// lsTenant is one line of `ls` and the JSON it prints.
type lsTenant struct {
	Tenant    schemas.TenantID `json:"tenant"`
	FromTime  time.Time        `json:"from_time"`
	FromLSN   string           `json:"from_lsn"`
	ToTime    time.Time        `json:"to_time"`
	ToLSN     string           `json:"to_lsn"`
	Snapshots int              `json:"snapshots"`
	Segments  int              `json:"segments"`
	Objects   int              `json:"objects"`
	Rows      int64            `json:"rows"`
	Bytes     int64            `json:"bytes"`
	Error     string           `json:"error,omitempty"`
	// Gaps are the archive's gaps (the same for every tenant): restores
	// into them refuse.
	Gaps    []*schemas.Gap `json:"gaps,omitempty"`
	Entries []lsEntry      `json:"entries,omitempty"`
	// Schemas is the tenant's schema history (--schemas): every table
	// version its archive holds, in the order they first appear.
	Schemas []lsVersion `json:"schemas,omitempty"`
}

// lsVersion is one table version of a tenant's schema history.
type lsVersion struct {
	Table      string    `json:"table"`
	Version    string    `json:"version"`
	Generation uint32    `json:"generation,omitempty"`
	FirstLSN   string    `json:"first_lsn"` // of the first object or marker holding it
	FirstTime  time.Time `json:"first_time"`
	Columns    string    `json:"columns"` // "name type, ..."
	DDL        []string  `json:"ddl,omitempty"`
	first      schemas.Pos
}

type lsEntry struct {
	Seq      uint64              `json:"seq"`
	Kind     string              `json:"kind"`
	First    string              `json:"first_lsn"`
	Last     string              `json:"last_lsn"`
	MinTime  time.Time           `json:"min_time"`
	MaxTime  time.Time           `json:"max_time"`
	Complete string              `json:"complete_lsn"`
	Objects  []schemas.ObjectRef `json:"objects"`
}

func runLs(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "ls", "ls [--tenant T [--schemas]] [--json] [flags]")
	var store storeFlags
	var tenant string
	var asJSON, history bool
	store.register(fs)
	fs.StringVar(&tenant, "tenant", "", "show this tenant's snapshots and segments")
	fs.BoolVar(&history, "schemas", false, "with --tenant: show its schema history (every table version, when it first appears, its columns and the DDL that made it)")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if history && tenant == "" {
		return errors.New("--schemas shows one tenant's schema history: pass --tenant T")
	}
	st, err := store.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	var ids []schemas.TenantID
	if tenant != "" {
		ids = []schemas.TenantID{schemas.TenantID(tenant)}
	} else if ids, err = catalog.ListTenants(ctx, st); err != nil {
		return err
	}
	var out []lsTenant
	for _, id := range ids {
		t, err := loadTenant(ctx, st, id)
		if tenant != "" && err != nil {
			return err
		}
		out = append(out, describe(id, t, err, tenant != ""))
		if history && err == nil {
			out[len(out)-1].Schemas = schemaHistory(t)
		}
	}
	gaps, err := catalog.ReadGaps(ctx, st)
	if err != nil {
		return err
	}
	for i := range out {
		out[i].Gaps = gaps
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if tenant != "" {
			return enc.Encode(out[0])
		}
		if out == nil {
			out = []lsTenant{}
		}
		return enc.Encode(out)
	}
	if err := printGaps(e, gaps); err != nil {
		return err
	}
	if len(out) == 0 {
		fmt.Fprintf(e.stdout, "no tenants archived in %s yet\n", st)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tRESTORABLE FROM\tTO\tSNAPSHOTS\tSEGMENTS\tOBJECTS\tROWS\tBYTES")
	for _, t := range out {
		if t.Error != "" {
			fmt.Fprintf(tw, "%s\t(%s)\t\t\t\t\t\t\n", t.Tenant, t.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s (%s)\t%d\t%d\t%d\t%d\t%d\n", t.Tenant,
			t.FromTime.Format(time.RFC3339Nano), t.FromLSN, t.ToTime.Format(time.RFC3339Nano), t.ToLSN,
			t.Snapshots, t.Segments, t.Objects, t.Rows, t.Bytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if tenant == "" {
		return nil
	}
	fmt.Fprintln(e.stdout)
	tw = tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tKIND\tLSN RANGE\tCOMMIT TIMES\tCOMPLETE TO\tOBJECT\tTABLE\tROWS\tBYTES")
	for _, en := range out[0].Entries {
		times := ""
		if !en.MinTime.IsZero() {
			times = en.MinTime.Format(time.RFC3339Nano) + " .. " + en.MaxTime.Format(time.RFC3339Nano)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s .. %s\t%s\t%s\t\t\t\t\n", en.Seq, en.Kind, en.First, en.Last, times, en.Complete)
		for _, o := range en.Objects {
			fmt.Fprintf(tw, "\t\t\t\t\t%s\t%s\t%d\t%d\n", o.Key, o.Table, o.Rows, o.Bytes)
		}
	}
	if err := tw.Flush(); err != nil || !history {
		return err
	}
	fmt.Fprintln(e.stdout)
	tw = tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tVERSION\tFROM\tCOLUMNS\tDDL")
	for _, v := range out[0].Schemas {
		ddl := strings.Join(v.DDL, "; ")
		if ddl == "" {
			ddl = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s\t%s\n", v.Table, v.Version, v.FirstTime.Format(time.RFC3339Nano), v.FirstLSN, v.Columns, ddl)
	}
	return tw.Flush()
}

// schemaHistory lists every table version t's archive holds, by the
// position of the first object holding it (a snapshot's, or a change's or
// marker's), with the DDL text any entry recorded for it.
func schemaHistory(t *catalog.Tenant) []lsVersion {
	byVersion := map[string]*lsVersion{}
	for _, en := range t.Entries {
		for _, o := range en.Objects {
			ts := en.Tables[o.SchemaVersion]
			v := byVersion[o.SchemaVersion]
			if v == nil {
				var cols []string
				for _, c := range ts.Columns {
					cols = append(cols, c.Name+" "+c.TypeName)
				}
				v = &lsVersion{Table: o.Table, Version: o.SchemaVersion, Generation: ts.Generation, Columns: strings.Join(cols, ", "), first: o.First}
				v.FirstTime = o.MinTime
				if v.FirstTime.IsZero() {
					v.FirstTime = en.MinTime
				}
				byVersion[o.SchemaVersion] = v
			} else if o.First.Less(v.first) {
				v.first, v.FirstTime = o.First, o.MinTime
				if v.FirstTime.IsZero() {
					v.FirstTime = en.MinTime
				}
			}
			if len(v.DDL) == 0 {
				v.DDL = ts.DDL
			}
		}
	}
	out := make([]lsVersion, 0, len(byVersion))
	for _, v := range byVersion {
		v.FirstLSN, v.FirstTime = v.first.LSN.String(), v.FirstTime.UTC()
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b lsVersion) int {
		switch {
		case a.first.Less(b.first):
			return -1
		case b.first.Less(a.first):
			return 1
		}
		return strings.Compare(a.Table, b.Table)
	})
	return out
}

func describe(id schemas.TenantID, t *catalog.Tenant, err error, detail bool) lsTenant {
	out := lsTenant{Tenant: id}
	if err != nil {
		if errors.Is(err, catalog.ErrUnknownTenant) {
			out.Error = "nothing archived yet"
		} else {
			out.Error = err.Error()
		}
		return out
	}
	r := t.Range
	out.FromTime, out.FromLSN, out.ToTime, out.ToLSN = r.FromTime.UTC(), r.FromLSN.String(), r.ToTime.UTC(), r.ToLSN.String()
	for _, en := range t.Entries {
		if en.Kind == schemas.EntrySnapshot {
			out.Snapshots++
		} else {
			out.Segments++
		}
		for _, o := range en.Objects {
			out.Objects++
			out.Rows += o.Rows
			out.Bytes += o.Bytes
		}
		if detail {
			out.Entries = append(out.Entries, lsEntry{Seq: en.Seq, Kind: en.Kind, First: en.First.LSN.String(), Last: en.Last.LSN.String(),
				MinTime: en.MinTime.UTC(), MaxTime: en.MaxTime.UTC(), Complete: en.CompleteLSN.String(), Objects: en.Objects})
		}
	}
	return out
}

// printGaps lists the archive's gaps, if any, before the tenants.
func printGaps(e *env, gaps []*schemas.Gap) error {
	if len(gaps) == 0 {
		return nil
	}
	fmt.Fprintf(e.stdout, "%d gap(s) in the archive: no tenant can be restored to a point inside one\n", len(gaps))
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GAP\tREASON\tFROM\tTO\tDETAIL")
	for _, g := range gaps {
		fmt.Fprintf(tw, "%d\t%s\t%s (%s)\t%s (%s)\t%s\n", g.Seq, g.Reason, g.FromTime.UTC().Format(time.RFC3339Nano), g.FromLSN,
			g.ToTime.UTC().Format(time.RFC3339Nano), g.ToLSN, g.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	return nil
}
