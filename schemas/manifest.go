package schemas

import (
	"encoding/json"
	"fmt"
	"time"
)

// ManifestVersion is the version of manifest entries written by this build.
const ManifestVersion = 1

// Entry kinds.
const (
	EntrySegment  = "segment"  // change segments: transactions (Start, End]
	EntrySnapshot = "snapshot" // the tenant's full rows as of LSN End
)

// ManifestEntry is one append-only record of a tenant's manifest log, stored
// as JSON at ManifestKey(tenant, Seq). An entry is written only after every
// object it lists is durable, and with a conditional create, so two writers
// can never both own the same sequence number.
type ManifestEntry struct {
	Version int       `json:"version"`
	Tenant  TenantID  `json:"tenant"`
	Seq     uint64    `json:"seq"`
	Kind    string    `json:"kind"`
	Created time.Time `json:"created"`
	Writer  string    `json:"writer,omitempty"` // archiver instance

	// First and Last are the identities of the first and last change the
	// entry holds (segments). For a snapshot both are {End, 0}.
	First Pos `json:"first"`
	Last  Pos `json:"last"`
	// MinTime and MaxTime bound the commit times of the changes held.
	MinTime time.Time `json:"min_time"`
	MaxTime time.Time `json:"max_time"`

	// CompleteLSN and CompleteTime: every transaction of this tenant that
	// committed at or before CompleteLSN is archived once this entry exists.
	CompleteLSN  LSN       `json:"complete_lsn"`
	CompleteTime time.Time `json:"complete_time"`

	Objects []ObjectRef             `json:"objects"`
	Tables  map[string]*TableSchema `json:"tables"` // by TableSchema.Version
}

// ObjectRef names one Parquet object of an entry.
type ObjectRef struct {
	Key           string `json:"key"`
	Table         string `json:"table"`          // "schema.table"
	SchemaVersion string `json:"schema_version"` // key into ManifestEntry.Tables
	Rows          int64  `json:"rows"`
	Bytes         int64  `json:"bytes"`
	SHA256        string `json:"sha256"`
	First         Pos    `json:"first"`
	Last          Pos    `json:"last"`
	// MinTime is the earliest commit time of the object's changes (zero in
	// older archives): a restore to an earlier time leaves the object out.
	MinTime time.Time `json:"min_time,omitzero"`
}

// Validate checks the invariants a reader relies on.
func (m *ManifestEntry) Validate() error {
	switch {
	case m.Version != ManifestVersion:
		return fmt.Errorf("manifest entry %d of tenant %q: version %d, this build reads %d", m.Seq, m.Tenant, m.Version, ManifestVersion)
	case m.Kind != EntrySegment && m.Kind != EntrySnapshot:
		return fmt.Errorf("manifest entry %d: unknown kind %q", m.Seq, m.Kind)
	case m.Last.Less(m.First):
		return fmt.Errorf("manifest entry %d: last position %s before first %s", m.Seq, m.Last, m.First)
	}
	for _, o := range m.Objects {
		if _, ok := m.Tables[o.SchemaVersion]; !ok {
			return fmt.Errorf("manifest entry %d: object %s names unknown schema version %q", m.Seq, o.Key, o.SchemaVersion)
		}
		if t, err := TenantFromKey(o.Key); err != nil || t != m.Tenant {
			return fmt.Errorf("manifest entry %d: object %s is outside tenant %q's prefix", m.Seq, o.Key, m.Tenant)
		}
	}
	return nil
}

// DecodeManifestEntry parses and validates one entry.
func DecodeManifestEntry(b []byte) (*ManifestEntry, error) {
	var m ManifestEntry
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode manifest entry: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Watermark is a partition's archived position, at _sys/watermarks/: every
// transaction that committed at or before CommitLSN and belongs to a tenant of
// the partition is durable in the archive. EndLSN is the slot position it
// allows capture to confirm.
type Watermark struct {
	Version    int       `json:"version"`
	Partition  int       `json:"partition"`
	Partitions int       `json:"partitions"`
	CommitLSN  LSN       `json:"commit_lsn"`
	EndLSN     LSN       `json:"end_lsn"`
	CommitTime time.Time `json:"commit_time"`
	Updated    time.Time `json:"updated"`
}

// Baseline is the archive's first consistent point: every tenant that had no
// rows in the initial snapshot had none at LSN, so it can be restored from an
// empty state at LSN onward.
type Baseline struct {
	Version    int       `json:"version"`
	SystemID   string    `json:"system_id"`
	Timeline   int32     `json:"timeline"`
	Database   string    `json:"database"`
	Slot       string    `json:"slot"`
	LSN        LSN       `json:"lsn"`
	Time       time.Time `json:"time"`
	Partitions int       `json:"partitions"`
}

// GapVersion is the version of gap records written by this build.
const GapVersion = 1

// GapPrefix is the prefix of the archive's gap records; GapKey names one.
const GapPrefix = "_sys/gaps/"

// GapKey is the key of gap record number seq (1-based).
func GapKey(seq uint64) string { return fmt.Sprintf("%s%020d.json", GapPrefix, seq) }

// Gap reasons.
const (
	GapSlotMissing   = "slot_missing"   // the replication slot was dropped
	GapSlotLost      = "slot_lost"      // the slot was invalidated (wal_status 'lost', max_slot_wal_keep_size)
	GapSystemChanged = "system_changed" // the source is another cluster (system identifier)
)

// Gap is a span in which the archive may be missing changes, stored as JSON
// at GapKey(Seq): capture lost its position in the source's WAL, so it
// recorded the gap and took a fresh baseline. Every tenant is complete up
// to From (the lowest partition watermark when the loss was found) and
// restorable again from To (the fresh baseline's snapshot), both
// inclusive; no restore point strictly between them is valid. The record
// is written before anything of the fresh baseline is published, and
// rewritten with a later To if that baseline had to be restarted.
type Gap struct {
	Version  int       `json:"version"`
	Seq      uint64    `json:"seq"`
	Reason   string    `json:"reason"`
	Detail   string    `json:"detail"`
	Detected time.Time `json:"detected"`

	FromLSN  LSN       `json:"from_lsn"`
	FromTime time.Time `json:"from_time"`
	ToLSN    LSN       `json:"to_lsn"`
	ToTime   time.Time `json:"to_time"`

	// Previous is the baseline the archive had before the gap; Next the
	// fresh one (written to BaselineKey once its snapshot is archived).
	Previous *Baseline `json:"previous,omitempty"`
	Next     Baseline  `json:"next"`
}

// Validate checks the invariants a reader relies on.
func (g *Gap) Validate() error {
	switch {
	case g.Version != GapVersion:
		return fmt.Errorf("gap record %d: version %d, this build reads %d", g.Seq, g.Version, GapVersion)
	case g.Seq == 0:
		return fmt.Errorf("gap record: sequence number 0")
	case g.Reason != GapSlotMissing && g.Reason != GapSlotLost && g.Reason != GapSystemChanged:
		return fmt.Errorf("gap record %d: unknown reason %q", g.Seq, g.Reason)
	case g.ToLSN <= g.FromLSN:
		return fmt.Errorf("gap record %d: ends at %s, not after its start %s", g.Seq, g.ToLSN, g.FromLSN)
	}
	return nil
}

// Contains reports whether restore point lsn, or time at when lsn is 0,
// lies strictly inside the gap.
func (g *Gap) Contains(lsn LSN, at time.Time) bool {
	if lsn != 0 {
		return lsn > g.FromLSN && lsn < g.ToLSN
	}
	return at.After(g.FromTime) && at.Before(g.ToTime)
}

// DecodeGap parses and validates one gap record.
func DecodeGap(b []byte) (*Gap, error) {
	var g Gap
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("decode gap record: %w", err)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &g, nil
}
