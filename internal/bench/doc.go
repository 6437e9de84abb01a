// Package bench is tenantwal's benchmark (issue #4): it starts its own
// throwaway PostgreSQL (internal/pgserver), embedded NATS and file://
// archives, generates a multi-tenant workload, and measures tenantwal next
// to PostgreSQL's own tools run on the same data in the same run. Every
// figure is a ratio against such a ceiling, never an absolute timing.
//
// # Workload
//
// Options.Tenants tenants (default 100), half pool (rows in public.orders,
// tenant column tenant_id) and half bridge (a schema tenant_<id> each),
// one orders table each: text, numeric, jsonb and two timestamptz, about
// 200 bytes a row. Transactions are one tenant's and 100 rows each,
// generated set-based (INSERT … SELECT generate_series): 80% inserts, 15%
// updates, 5% deletes. The first bridge tenant is the one restored and
// snapshotted: it is loaded with 100k×Size rows before tenantwal starts
// (so its initial snapshot holds them) and gets a tenth of the backlog.
//
// # Phases
//
//  1. Two tenantwal deployments ("capture" and "e2e": own slot, bus and
//     archive) take their baselines on the loaded database; then a plain
//     pgoutput slot is created for pg_recvlogical. All three slots start
//     before the backlog, so every reader decodes the same changes.
//  2. The backlog: 1M×Size row changes, as fast as the workload goes.
//  3. Ceiling: pg_recvlogical (pgoutput, protocol 1, same publication)
//     decodes the backlog to /dev/null up to its end LSN.
//  4. Capture throughput: "capture" alone (no archiver) until its
//     tenantwal_capture_changes_total counter reaches the backlog.
//  5. End-to-end throughput: "e2e" capture and archiver together until
//     tenantwal_archiver_rows_total reaches the backlog (rows written to
//     the store; the manifest entry follows at once).
//  6. Lag: a steady load paced at half the ceiling for Options.LagDuration
//     while "e2e" runs; each change's lag is from its commit time to the
//     modification time of the manifest entry naming it (see lag.go).
//  7. Restore the first tenant at the backlog's end time (PlanRestore +
//     Apply) against COPY FROM STDIN (FORMAT binary) of the same rows into a
//     new table, primary key added after the load, in one transaction.
//  8. Snapshot bytes: the tenant's snapshot objects in the manifest against
//     pg_dump -Fc -n of its schema taken when the snapshot was.
//  9. Whole-cluster PITR: copy a base backup taken before the backlog,
//     replay the primary's WAL to the same time, pg_dump -Fc -n the
//     tenant's schema and pg_restore it into a new database, against
//     tenantwal's restore time of phase 7.
//
// Peak RSS through a 1 GB transaction is not measured yet: capture and
// archiver run inside this process.
//
// Each phase's note records the CPU used by this process and by the
// PostgreSQL server (cores busy on average), which tells which side limits
// a figure on a small machine.
package bench
