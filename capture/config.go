package capture

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/tenantwal/tenantwal/capture/route"
)

// Config configures capture. Zero values take the documented defaults.
type Config struct {
	// DSN is the source database connection string (a normal connection;
	// capture adds replication=database for the stream itself).
	DSN string
	// Slot is the logical replication slot name. Default "tenantwal".
	Slot string
	// Publication is the publication name. Default "tenantwal".
	Publication string
	// Route configures tenant routing.
	Route route.Config
	// Tables restricts the publication created by Init to these
	// "schema.table" names; empty means FOR ALL TABLES.
	Tables []string
	// Heartbeat is how often a transactional logical message is written so
	// idle sources still advance the slot and the archive's complete-up-to
	// time. Default 10s; negative disables.
	Heartbeat time.Duration
	// StatusInterval is how often standby status is sent. Default 1s.
	StatusInterval time.Duration
	// ReceiveTimeout is how long the replication connection may deliver
	// nothing, not even a keepalive, before capture treats it as dead
	// (a crashed server, a silently dropped network path) and reconnects.
	// Halfway through a silence capture asks the server for a keepalive.
	// Default (0): the server's wal_sender_timeout, after which the server
	// gives up on us too, or 60s when that is disabled.
	ReceiveTimeout time.Duration
	// MarkerInterval is how often partition markers are published when
	// transactions have been published since the last. Default 1s.
	MarkerInterval time.Duration
	// ConfirmInterval is how often archived watermarks are read back to
	// advance the slot. Default 2s.
	ConfirmInterval time.Duration
	// ChunkBytes bounds one message's encoded size. Default 512 KiB, and
	// never more than half the server's max payload.
	ChunkBytes int
	// TxnBufferBytes bounds what one transaction may hold in memory before
	// its chunks are published early. Default 64 MiB.
	TxnBufferBytes int
	// Rebaseline allows capture to continue when the source is another
	// cluster than the archive's baseline (its system identifier differs):
	// it records the gap in the archive and takes a fresh baseline. A
	// dropped or invalidated slot is handled that way without it. Restores
	// into a gap refuse, naming it.
	Rebaseline bool
	// NoDDLTrigger keeps Init from installing the DDL event triggers
	// (ddl.go); DDL is then learnt from each table's next change, and DROP
	// TABLE is not recorded.
	NoDDLTrigger bool
	// Partitions is the number of partitions (subjects); New takes it from
	// the bus.
	Partitions int
}

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.DSN == "" {
		return errors.New("capture: no source database: pass --dsn or set TENANTWAL_DSN")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Slot, "tenantwal")
	def(&c.Publication, "tenantwal")
	defd := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defd(&c.Heartbeat, 10*time.Second)
	defd(&c.StatusInterval, time.Second)
	defd(&c.MarkerInterval, time.Second)
	defd(&c.ConfirmInterval, 2*time.Second)
	if c.ChunkBytes == 0 {
		c.ChunkBytes = 512 << 10
	}
	if c.TxnBufferBytes == 0 {
		c.TxnBufferBytes = 64 << 20
	}
	if c.Partitions == 0 {
		c.Partitions = 16
	}
	if !slotName.MatchString(c.Slot) {
		return fmt.Errorf("slot name %q: use 1 to 63 lower-case letters, digits or underscores", c.Slot)
	}
	if !slotName.MatchString(c.Publication) {
		return fmt.Errorf("publication name %q: use 1 to 63 lower-case letters, digits or underscores", c.Publication)
	}
	if c.Partitions < 1 || c.Partitions > 4096 {
		return fmt.Errorf("partitions %d: use 1 to 4096", c.Partitions)
	}
	if c.ReceiveTimeout < 0 {
		return fmt.Errorf("receive timeout %s: use a positive duration, or 0 for the server's wal_sender_timeout", c.ReceiveTimeout)
	}
	if c.ChunkBytes < 4<<10 {
		return fmt.Errorf("chunk size %d bytes: use at least 4096", c.ChunkBytes)
	}
	return c.Route.Validate()
}
