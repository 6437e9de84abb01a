package archiver

import (
	"fmt"
	"os"
	"time"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/schemas"
)

// Config configures an archiver. Zero values take the documented defaults.
type Config struct {
	// Partitions lists the partitions this archiver owns; nil means all.
	// Run exactly one archiver per partition.
	Partitions []int
	// FlushInterval bounds how long a message waits before it is durable in
	// the store. Default 5s.
	FlushInterval time.Duration
	// FlushBytes flushes a partition early when its buffer reaches this
	// size. Default 8 MiB.
	FlushBytes int
	// BufferBytes bounds the rows all partitions buffer together: past it,
	// a partition holding at least its share (BufferBytes / partitions)
	// flushes early, so a big transaction spread over a few partitions
	// does not hold FlushBytes in each. Default 32 MiB. Sizes are what the
	// buffered rows take in the Go heap (their values, copied out of the
	// messages) plus each buffered tenant's, part's and table schema's
	// overhead, which dominates with many tenants of a few rows each; the
	// process's resident memory is a small multiple (garbage between
	// collections, Parquet writers, fetched messages).
	BufferBytes int
	// FetchBatch is how many messages one pull requests at most. Default
	// 512.
	FetchBatch int
	// FetchBytes bounds the bytes one pull requests (messages are up to
	// capture's ChunkBytes, 512 KiB, each): what a partition holds
	// undecoded. Default and minimum bus.PullBytes (4 MiB, or the bus's
	// largest message when that is more), which the embedded server's
	// max_pending is sized for.
	FetchBytes int
	// Durable is the JetStream durable consumer name prefix. Default
	// "tenantwal-archiver"; the partition is appended.
	Durable string
	// Writer names this archiver instance in manifest entries. Default
	// hostname:pid.
	Writer string
	// SpillDir holds Parquet files while they are written (those past
	// 256 KiB; smaller ones are held in memory). Default the system temp
	// dir.
	SpillDir string
	// FlushTimeout bounds one flush; a flush in progress when the archiver
	// is stopped is completed within it. Default 2m.
	FlushTimeout time.Duration
	// RetryMin and RetryMax bound the backoff before a failed partition
	// worker starts again. Default 1s and 30s.
	RetryMin, RetryMax time.Duration
	// CommitConcurrency is how many tenants' commits (Parquet objects, then
	// the manifest entry) run at once, in one partition's flush and across
	// all the partitions this archiver owns together. A flush is
	// acknowledged only once all of its tenants are committed; each
	// tenant's entries stay in order. Most of a small commit is waiting on
	// fsync (file://) or on round trips (S3), which overlap. Default 8; 1
	// commits one tenant at a time in the whole archiver.
	CommitConcurrency int
	// Segment are the Parquet writer options.
	Segment segment.Options
	// SnapshotCompressionLevel is the zstd level of snapshot objects when
	// Segment compresses with zstd and sets no level of its own. A snapshot
	// is written once and kept, so it is worth more CPU than a change
	// segment on the archiving path. Default 9 (klauspost/compress's
	// "better compression" speed: on the bench's rows about 5% smaller than
	// the default level, for about the same CPU); -1 writes snapshots like
	// segments.
	SnapshotCompressionLevel int
}

// Defaults of SnapshotCompressionLevel and CommitConcurrency.
const (
	defaultSnapshotLevel     = 9
	defaultCommitConcurrency = 8
)

// Validate fills defaults and checks the configuration.
func (c *Config) Validate(partitions int) error {
	if c.FlushInterval == 0 {
		c.FlushInterval = 5 * time.Second
	}
	if c.FlushBytes == 0 {
		c.FlushBytes = 8 << 20
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = 32 << 20
	}
	if c.SnapshotCompressionLevel == 0 {
		c.SnapshotCompressionLevel = defaultSnapshotLevel
	}
	if l := c.SnapshotCompressionLevel; l != -1 && (l < 1 || l > 22) {
		return fmt.Errorf("snapshot compression level %d: use 1 to 22 (zstd), or -1 for the segments' level", l)
	}
	if c.CommitConcurrency == 0 {
		c.CommitConcurrency = defaultCommitConcurrency
	}
	if c.CommitConcurrency < 0 {
		return fmt.Errorf("commit concurrency %d: use a positive number", c.CommitConcurrency)
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = 2 * time.Minute
	}
	if c.RetryMin == 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.FetchBatch == 0 {
		c.FetchBatch = 512
	}
	if c.Durable == "" {
		c.Durable = "tenantwal-archiver"
	}
	if c.Writer == "" {
		h, _ := os.Hostname()
		c.Writer = fmt.Sprintf("%s:%d", h, os.Getpid())
	}
	if c.SpillDir == "" {
		c.SpillDir = os.TempDir()
	}
	if c.Partitions == nil {
		for p := range partitions {
			c.Partitions = append(c.Partitions, p)
		}
	}
	for _, p := range c.Partitions {
		if p < 0 || p >= partitions {
			return fmt.Errorf("partition %d: the bus has partitions 0 to %d", p, partitions-1)
		}
	}
	if c.FlushBytes < 0 || c.BufferBytes < 0 {
		return fmt.Errorf("flush bytes %d, buffer bytes %d: use positive sizes", c.FlushBytes, c.BufferBytes)
	}
	if c.FlushInterval < 10*time.Millisecond {
		return fmt.Errorf("flush interval %s: use at least 10ms", c.FlushInterval)
	}
	return nil
}

// segmentOptions are the Parquet writer options of an object of kind
// (schemas.EntrySnapshot or EntrySegment).
func (c *Config) segmentOptions(kind string) segment.Options {
	o := c.Segment
	zstd := o.Compression == "" || o.Compression == "zstd"
	if kind == schemas.EntrySnapshot && zstd && o.CompressionLevel == 0 && c.SnapshotCompressionLevel > 0 {
		o.CompressionLevel = c.SnapshotCompressionLevel
	}
	return o
}
