package capture

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are capture's Prometheus metrics. No metric carries a tenant
// label: per-tenant facts live in the archive's manifests.
type Metrics struct {
	messages  prometheus.Counter
	bytes     prometheus.Counter
	changes   prometheus.Counter
	markers   prometheus.Counter
	txns      prometheus.Counter
	confirmed prometheus.Gauge
	received  prometheus.Gauge
	snapshot  prometheus.Counter
	// interruptions counts runs that ended in an error and were retried
	// (a lost connection, a restarted server).
	interruptions prometheus.Counter
	// rebaselines counts fresh baselines taken after a gap.
	rebaselines prometheus.Counter
}

// NewMetrics registers capture's metrics on reg; a nil reg registers none.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages:  prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_capture_messages_published_total", Help: "JetStream messages published."}),
		bytes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_capture_bytes_published_total", Help: "Bytes of JetStream message payloads published."}),
		changes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_capture_changes_total", Help: "Row changes and snapshot rows published."}),
		markers:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_capture_marker_rounds_total", Help: "Rounds of partition markers published."}),
		txns:      prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_capture_transactions_total", Help: "Source transactions decoded."}),
		confirmed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantwal_capture_confirmed_lsn", Help: "Slot position confirmed to PostgreSQL (archived watermark)."}),
		received:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantwal_capture_received_lsn", Help: "Last WAL position received."}),
		snapshot:  prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_capture_snapshot_rows_total", Help: "Rows read by initial snapshots."}),
		interruptions: prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_capture_interruptions_total",
			Help: "Times streaming stopped on an error (lost connection, restarted server) and was resumed from the slot after a backoff."}),
		rebaselines: prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantwal_capture_rebaselines_total",
			Help: "Gaps recorded in the archive (slot dropped or invalidated, source replaced) and fresh baselines taken after them."}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.bytes, m.changes, m.markers, m.txns, m.confirmed, m.received, m.snapshot, m.interruptions, m.rebaselines)
	}
	return m
}

func (m *Metrics) published(bytes, changes int) {
	m.messages.Inc()
	m.bytes.Add(float64(bytes))
	m.changes.Add(float64(changes))
}
