package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one benchmark run's result: one Measure per row of the issue's
// table, each next to the PostgreSQL ceiling measured in the same run.
type Report struct {
	// Size and Tenants are the options the run used.
	Size    float64 `json:"size"`
	Tenants int     `json:"tenants"`
	// Changes is how many row changes the backlog holds.
	Changes int64 `json:"changes"`
	// CPUs is runtime.NumCPU() of the machine that ran it.
	CPUs     int           `json:"cpus"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Rows     []Measure     `json:"rows"`
}

// Measure is one row of the report. Ratio is always Value / Ceiling, the
// ceiling being PostgreSQL's own tool measured in the same run; Target says
// which way it must go ("≥ 0.9×" for throughputs, "≤ 0.8×" for sizes and
// times) and Met whether it did. A measure without a ceiling (the lag) has
// Ceiling 0 and Ratio 0 and compares Value with Target directly.
type Measure struct {
	Name        string  `json:"name"`
	Value       float64 `json:"value"`
	Unit        string  `json:"unit"`
	Ceiling     float64 `json:"ceiling,omitempty"`
	CeilingName string  `json:"ceiling_name,omitempty"`
	Ratio       float64 `json:"ratio,omitempty"`
	Target      string  `json:"target"`
	Met         bool    `json:"met"`
	// Skipped is set when the measure was not taken; Note says why.
	Skipped bool   `json:"skipped,omitempty"`
	Note    string `json:"note,omitempty"`
}

// Measure names, stable for consumers of the JSON.
const (
	MeasureCapture     = "capture throughput"
	MeasureArchive     = "end-to-end archive throughput"
	MeasureLagP50      = "end-to-end lag p50"
	MeasureLagP99      = "end-to-end lag p99"
	MeasureRestore     = "restore one tenant at time T"
	MeasurePITR        = "restore one tenant vs whole-cluster PITR"
	MeasureSnapshot    = "archive bytes of a tenant snapshot"
	MeasureRSSCapture  = "peak RSS of capture through a 1 GB transaction"
	MeasureRSSArchiver = "peak RSS of the archiver through a 1 GB transaction"
	// The many-tenants memory measure (Options.PoolTenants, 10,000 by
	// default); the names keep the default count for JSON consumers.
	MeasureRSSCaptureTenants  = "peak RSS of capture with 10,000 pool tenants"
	MeasureRSSArchiverTenants = "peak RSS of the archiver with 10,000 pool tenants"
)

// Measure returns the row named name, or nil.
func (r *Report) Measure(name string) *Measure {
	for i := range r.Rows {
		if r.Rows[i].Name == name {
			return &r.Rows[i]
		}
	}
	return nil
}

// atLeast fills Ratio and Met for a "higher is better" measure.
func atLeast(m Measure, min float64) Measure {
	m.Target = "≥ " + trimFloat(min) + "×"
	if m.Ceiling > 0 {
		m.Ratio = m.Value / m.Ceiling
		m.Met = m.Ratio >= min
	}
	return m
}

// atMost fills Ratio and Met for a "lower is better" measure.
func atMost(m Measure, max float64) Measure {
	m.Target = "≤ " + trimFloat(max) + "×"
	if m.Ceiling > 0 {
		m.Ratio = m.Value / m.Ceiling
		m.Met = m.Ratio <= max
	}
	return m
}

// WriteTable writes the report as an aligned text table, one row per
// measure, followed by the notes.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "tenantwal bench: size %s, %d tenants, %d changes, %d CPUs, %s\n\n",
		trimFloat(r.Size), r.Tenants, r.Changes, r.CPUs, r.Duration.Round(time.Second))
	fmt.Fprintln(tw, "MEASURE\tVALUE\tCEILING (same run)\tRATIO\tTARGET\tMET")
	for _, m := range r.Rows {
		if m.Skipped {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\tnot measured\n", m.Name, m.Target)
			continue
		}
		ceiling, ratio := "-", "-"
		if m.Ceiling > 0 {
			ceiling = fmt.Sprintf("%s %s (%s)", human(m.Ceiling), m.Unit, m.CeilingName)
			ratio = fmt.Sprintf("%.2f×", m.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\n", m.Name, human(m.Value), m.Unit, ceiling, ratio, m.Target, yesNo(m.Met))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes strings.Builder
	for _, m := range r.Rows {
		if m.Note != "" {
			fmt.Fprintf(&notes, "  %s: %s\n", m.Name, m.Note)
		}
	}
	if notes.Len() > 0 {
		if _, err := fmt.Fprintf(w, "\nnotes:\n%s", notes.String()); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// human prints v with 3 significant digits and a k/M suffix.
func human(v float64) string {
	switch {
	case v >= 10e6:
		return strconv.FormatFloat(v/1e6, 'f', 0, 64) + "M"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 10e3:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 2, 64) + "k"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
