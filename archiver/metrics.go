package archiver

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the archiver's Prometheus metrics, without tenant labels.
type Metrics struct {
	messages   prometheus.Counter
	duplicates prometheus.Counter
	rows       prometheus.Counter
	objects    prometheus.Counter
	bytes      prometheus.Counter
	entries    prometheus.Counter
	flushes    prometheus.Counter
	flushTime  prometheus.Histogram
	lag        prometheus.Histogram
	failures   prometheus.Counter
	restarts   prometheus.Counter
}

// NewMetrics registers the archiver's metrics on reg; nil registers none.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_archiver_messages_total", Help: "Bus messages consumed."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_archiver_duplicate_changes_total", Help: "Redelivered changes skipped because already archived."}),
		rows:       prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_archiver_rows_total", Help: "Rows written to Parquet objects."}),
		objects:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_archiver_objects_total", Help: "Parquet objects stored."}),
		bytes:      prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_archiver_bytes_total", Help: "Bytes of Parquet objects stored."}),
		entries:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_archiver_manifest_entries_total", Help: "Manifest entries committed."}),
		flushes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_archiver_flushes_total", Help: "Partition flushes."}),
		flushTime:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tenantwal_archiver_flush_seconds", Help: "Time to make one partition flush durable.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		lag:        prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tenantwal_archiver_commit_to_durable_seconds", Help: "From source commit to durable in the store.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
		failures:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_archiver_store_failures_total", Help: "Flushes that failed on the object store."}),
		restarts:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_archiver_worker_restarts_total", Help: "Partition workers restarted after a failure."}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.duplicates, m.rows, m.objects, m.bytes, m.entries, m.flushes, m.flushTime, m.lag, m.failures, m.restarts)
	}
	return m
}
