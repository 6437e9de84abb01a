// Package capture reads a PostgreSQL logical replication slot (pgoutput,
// protocol v1), routes every change to its tenant, and publishes one
// JetStream message per (transaction, tenant, chunk) to the tenant's
// partition subject.
//
// # Data path
//
// A receiver goroutine owns the replication connection: it reads CopyData,
// answers keepalives and sends standby status on a timer even while the
// pipeline is blocked (so wal_sender_timeout never trips under
// backpressure). A processor goroutine decodes, routes, chunks and publishes
// asynchronously. An ack goroutine waits for PubAcks in publish order and
// records the last transaction all of whose messages are stored. A marker
// goroutine then publishes a marker to every partition; an archiver turns
// the marker into a watermark in the object store only once everything
// before it is durable there.
//
// # Durability (no loss)
//
// The slot's confirmed flush position is the minimum over all partitions of
// the archived watermarks read back from the object store: a change is
// confirmed only once it is durable in the archive, never on PubAck alone.
//
// # Initial snapshot
//
// On a new slot, capture copies every published table at the slot's exported
// snapshot (consistent point L0), tenant by tenant, as snapshot messages,
// then markers at L0. Once every partition's watermark reaches L0 it writes
// the archive baseline: from then on any tenant can be restored from L0 on.
package capture
