// Package bus connects tenantwal to NATS JetStream: the stream capture
// publishes to and the durable consumers archivers read from.
//
// # Stream
//
// One stream (default "TENANTWAL") owns every subject under a prefix
// (default "tw.>"). Tenants are hashed into Partitions subjects named
// schemas.Subject(prefix, p) ("tw.p0000" .. "tw.p0015"); tenant ids never
// appear in subjects. Open creates the stream with file storage, limits
// retention and DiscardNew, recording Partitions in the stream's metadata,
// or updates the limits of an existing stream with the same subjects. A
// stream of the same name with other subjects or memory storage is never
// rewritten: Open fails with ErrStreamConflict. The partition count of an
// existing stream cannot change (tenants would move to other subjects):
// Open fails with ErrPartitionsChanged.
//
// Loss and backpressure: with DiscardNew a full stream (MaxBytes) rejects
// new publishes (the publisher gets an error and must retry later) instead
// of dropping the oldest, possibly unarchived, messages. MaxAge, when set,
// does expire messages whether archived or not. With limits retention,
// acknowledged messages stay in the stream until MaxAge or a purge removes
// them, so a stream with MaxBytes needs one of the two to make room.
//
// De-duplication: a publish carrying a Nats-Msg-Id already seen within
// DuplicateWindow (default 2m) is not stored again; its PubAck has
// Duplicate set and the sequence of the first copy. This is a first line
// only: a retry after the window is stored twice.
//
// Durability: a PubAck means the server has written the message, not that
// it is on disk; nats-server fsyncs every 2 minutes unless configured with
// sync_interval: always (Config.SyncAlways for the embedded server). A
// killed server process loses no stored message (the kernel has it); a
// machine crash can. Consumer state (delivered and ack floor) is written
// asynchronously, at most ten times a second, even with SyncAlways: after a
// server is killed a consumer's ack floor can move back and already
// archived messages be delivered again, never forward. This is why
// tenantwal does not rely on JetStream for no-loss: capture confirms the
// replication slot only up to what archivers have made durable in the
// object store, and archivers treat redelivered changes as duplicates by
// their commit LSN and position.
//
// # Consumers
//
// Bus.Consumer returns a durable pull consumer per partition with AckAll:
// acking message N acknowledges every earlier message delivered to that
// consumer, so an archiver acks only the last message of a batch once the
// whole batch is durable in object storage. Unacked messages are
// redelivered after AckWait (5m), without limit. Bus.Consumer also resets
// the consumer to its ack floor, so that a new owner of the partition (a
// restarted archiver) gets every unacknowledged message first and in order,
// and cannot acknowledge a predecessor's in-flight messages by acking a
// later one.
//
// # Servers
//
// With Config.URL empty, Open starts an embedded nats-server on 127.0.0.1
// (plaintext: for demos and tests) storing JetStream data in
// Config.StoreDir; Close shuts it down. Otherwise Open connects to URL
// (tls:// for TLS, Config.Credentials for a .creds file). The initial
// connect fails within about 5 seconds with a *ConnectError naming the URL
// and the fix ("is nats-server running with -js?"), also when the server is
// up without JetStream; after that the client reconnects forever with
// capped exponential backoff.
package bus
