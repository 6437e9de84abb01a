// Package archiver consumes the bus partition by partition and writes each
// tenant's changes and snapshot rows to the object store as Parquet objects
// listed in the tenant's append-only manifest.
//
// # Durability
//
// A partition worker buffers messages, then flushes: it writes every
// buffered tenant's objects, commits one manifest entry per tenant and kind
// with a conditional create, writes the partition watermark if a marker was
// among the flushed messages, and only then acknowledges the last message
// (AckAll). A crash anywhere before the acknowledgement redelivers the
// messages; the positions already in a committed manifest entry are skipped,
// so redelivery never duplicates a change. Objects written without a
// manifest entry are orphans: never read by a restore.
//
// # Memory
//
// A worker holds at most FlushBytes of buffered rows (it flushes early when
// the buffer is full, also mid-transaction), and all workers together about
// BufferBytes. A buffered row's values are copied out of its message, so
// that no message payload (with its table schemas as JSON) stays pinned
// until the flush, and the budget counts each buffered tenant's, part's and
// table schema's overhead besides the rows. Parquet files past 256 KiB are
// written to a spill directory and streamed to the store.
package archiver
