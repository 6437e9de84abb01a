// Package pgrepl speaks the PostgreSQL streaming replication protocol on a
// *pgconn.PgConn: the replication commands IDENTIFY_SYSTEM,
// CREATE_REPLICATION_SLOT, DROP_REPLICATION_SLOT and START_REPLICATION, and
// the CopyBoth sub-protocol messages XLogData, Primary keepalive and Standby
// status update.
//
// # Connections
//
// Connect opens a logical replication connection (replication=database)
// whose session settings are pinned, so that the text form of the values
// pgoutput sends does not depend on role or database defaults.
//
// # Parsing
//
// ParseXLogData, ParsePrimaryKeepalive and ParseIdentifySystem are pure: they
// take bytes or a query result, bounds-check everything, and return an error
// wrapping ErrMalformed rather than panicking. The connection functions only
// move bytes.
//
// # Concurrency
//
// A connection is used by one goroutine at a time: SendStandbyStatus must
// not run concurrently with (*pgconn.PgConn).ReceiveMessage. After an error
// from a function that writes (StartReplication, SendStandbyStatus) the
// connection's state is unknown: close it.
//
// # References
//
//   - Streaming Replication Protocol:
//     https://www.postgresql.org/docs/15/protocol-replication.html
//   - Logical Streaming Replication Parameters (pgoutput options):
//     https://www.postgresql.org/docs/15/protocol-logical-replication.html
//   - Message formats of the logical replication protocol: package
//     capture/pgoutput.
package pgrepl
