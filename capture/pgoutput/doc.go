// Package pgoutput decodes the messages of PostgreSQL's built-in logical
// replication output plugin, pgoutput, protocol version 1. It is pure: it takes
// the bytes of one message and returns a value, and does no I/O. The
// replication connection (package capture/pgrepl) moves the bytes; this
// package only parses them.
//
// # Input
//
// Parse takes the payload of one XLogData ('w') CopyData message of the
// streaming replication protocol, that is, the bytes after its 25-byte header
// (see [Streaming Replication Protocol]). Each payload holds exactly one
// logical replication message, whose first byte is its [MessageType]. The
// byte layouts follow [Logical Replication Message Formats].
//
// Parse returns one of *Begin, *Commit, *Origin, *Relation, *TypeMsg,
// *Insert, *Update, *Delete, *Truncate or *LogicalMessage; switch on the
// concrete type.
//
// # Retention of the input
//
// Parse is zero-copy for values: TupleColumn.Data and LogicalMessage.Content
// are sub-slices of the data passed to Parse. They are valid only while that
// buffer is unchanged; a caller that reuses its receive buffer must copy what
// it keeps (bytes.Clone). The sub-slices have their capacity clipped to their
// length, so appending to one never overwrites the bytes that follow it.
// Names (schemas, tables, columns, types, origins, prefixes) are Go strings
// and therefore copies.
//
// # Errors
//
// Parse never panics and never allocates more than a constant factor of
// len(data), whatever the counts and lengths in the message claim. Every
// failure is a *ParseError naming the message type and the byte offset of the
// offending field. Truncated or malformed input, unknown message types,
// negative or oversized lengths, and trailing bytes wrap [ErrMalformed].
// Messages that only exist in later protocol versions or with options
// tenantwal does not request (streaming, two-phase) wrap [ErrUnsupported].
//
// A message that Parse accepts is in canonical form: re-encoding the returned
// value by the documented layout gives back exactly the input bytes.
//
// [Logical Replication Message Formats]: https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
// [Streaming Replication Protocol]: https://www.postgresql.org/docs/15/protocol-replication.html
package pgoutput
