package bus

import (
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"
)

// Defaults applied by Validate to zero fields of a Config.
const (
	DefaultStream          = "TENANTWAL"
	DefaultSubjectPrefix   = "tw"
	DefaultPartitions      = 16
	DefaultReplicas        = 1
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultMaxPayload      = 8 << 20

	// MaxPartitions bounds Partitions: subjects carry four decimal digits.
	MaxPartitions = 10000
	// maxServerPayload is nats-server's hard upper bound for max_payload.
	maxServerPayload = 64 << 20
)

// Config describes the JetStream stream tenantwal publishes to and, when URL
// is empty, the embedded server that holds it. Zero fields take the
// documented defaults (Validate fills them in). The stream always uses file
// storage, limits retention and DiscardNew; Open refuses an existing stream
// of the same name with other subjects or storage (ErrStreamConflict) or
// another partition count (ErrPartitionsChanged), and updates the limits
// below (MaxBytes, MaxAge, DuplicateWindow, Replicas) of a matching one.
type Config struct {
	// URL of a NATS server with JetStream, e.g. "nats://127.0.0.1:4222",
	// "tls://nats.example:4222" or a comma-separated list. Empty starts an
	// embedded server on 127.0.0.1 (plaintext, for demos and tests).
	URL string
	// StoreDir is the embedded server's JetStream store directory.
	// Required when URL is empty, ignored otherwise.
	StoreDir string
	// Port of the embedded server on 127.0.0.1; 0 picks a free port.
	Port int
	// SyncAlways makes the embedded server fsync every stream write instead
	// of every 2 minutes (nats-server "sync_interval: always"). tenantwal
	// does not need it for no-loss (the slot advances only once changes are
	// in the object store, see the package documentation); it narrows what a
	// machine crash can make JetStream replay, at a throughput cost.
	SyncAlways bool

	// Stream name; default "TENANTWAL". No dots, wildcards, whitespace or
	// path separators.
	Stream string
	// SubjectPrefix of every subject in the stream; default "tw". One or
	// more dot-separated tokens without wildcards or whitespace. The stream
	// owns "<prefix>.>"; partition p publishes to schemas.Subject(prefix, p).
	SubjectPrefix string
	// Partitions is the number of partition subjects; default 16, 1..10000.
	// It is recorded in the stream's metadata when the stream is created and
	// cannot change afterwards: tenants would hash to other partitions.
	Partitions int
	// Replicas of the stream; default 1.
	Replicas int
	// MaxBytes bounds the stream's size; 0 means unlimited. The stream always
	// uses DiscardNew: when full, publishes fail instead of old messages
	// being dropped.
	MaxBytes int64
	// MaxAge expires messages older than this; 0 means never. Expiry ignores
	// whether a message was archived, so a non-zero MaxAge can lose data
	// when archivers fall behind.
	MaxAge time.Duration
	// DuplicateWindow is how long the stream remembers Nats-Msg-Id values
	// for de-duplication; default 2m, at most MaxAge when that is set.
	DuplicateWindow time.Duration
	// MaxPayload is the embedded server's max_payload; default 8 MiB, at
	// most 64 MiB. Ignored for a server given by URL, which sets its own
	// (nats-server's default is 1 MiB); Bus.MaxPayload reports the value in
	// effect.
	MaxPayload int32

	// Credentials is an optional .creds file (JWT + nkey) for real servers.
	Credentials string
	// Name is the client connection name shown in server monitoring.
	Name string
}

// Validate fills in defaults for zero fields and reports the first invalid
// field. Open calls it; calling it first is harmless.
func (c *Config) Validate() error {
	c.setDefaults()
	if c.URL == "" && c.StoreDir == "" {
		return fmt.Errorf("bus config: StoreDir is required for the embedded server (no URL given)")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("bus config: Port %d out of range 0..65535", c.Port)
	}
	if err := validName(c.Stream); err != nil {
		return fmt.Errorf("bus config: Stream %q: %w", c.Stream, err)
	}
	for tok := range strings.SplitSeq(c.SubjectPrefix, ".") {
		if err := validName(tok); err != nil {
			return fmt.Errorf("bus config: SubjectPrefix %q: %w", c.SubjectPrefix, err)
		}
	}
	switch {
	case c.Partitions < 1 || c.Partitions > MaxPartitions:
		return fmt.Errorf("bus config: Partitions %d out of range 1..%d", c.Partitions, MaxPartitions)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("bus config: Replicas %d out of range 1..5", c.Replicas)
	case c.MaxBytes < 0:
		return fmt.Errorf("bus config: MaxBytes %d is negative", c.MaxBytes)
	case c.MaxAge < 0:
		return fmt.Errorf("bus config: MaxAge %v is negative", c.MaxAge)
	case c.DuplicateWindow < 0:
		return fmt.Errorf("bus config: DuplicateWindow %v is negative", c.DuplicateWindow)
	case c.MaxAge > 0 && c.DuplicateWindow > c.MaxAge:
		return fmt.Errorf("bus config: DuplicateWindow %v exceeds MaxAge %v", c.DuplicateWindow, c.MaxAge)
	case c.MaxPayload < 0 || c.MaxPayload > maxServerPayload:
		return fmt.Errorf("bus config: MaxPayload %d out of range 1..%d", c.MaxPayload, maxServerPayload)
	}
	if c.Credentials != "" {
		if _, err := os.Stat(c.Credentials); err != nil {
			return fmt.Errorf("bus config: Credentials: %w", err)
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
}

// validName accepts a stream name or one subject token: non-empty, printable,
// no whitespace, wildcards, dots or path separators.
func validName(s string) error {
	if s == "" {
		return fmt.Errorf("empty name or subject token")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune(".*>/\\", r) {
			return fmt.Errorf("character %q not allowed", r)
		}
	}
	return nil
}
