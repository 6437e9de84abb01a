package schemas

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Archive layout, format 1. Every object holding tenant data lives under its
// tenant's prefix; _sys/ holds only positions and configuration, never rows.
//
//	tenants/<tenant>/manifest/<seq, 20 digits>.json      append-only manifest log
//	tenants/<tenant>/segments/<lsn>-<rand>/<table>.parquet  change segments
//	tenants/<tenant>/snapshots/<lsn>-<rand>/<table>.parquet snapshots
//	_sys/baseline.json                                  first consistent point of the archive
//	_sys/watermarks/<partition>.json                    per-partition archived watermark
//
// <tenant> and <table> are EscapeName of the tenant id and of
// "schema.table" (each part escaped, joined by "."); <lsn> is 16 hex digits.
const LayoutVersion = 1

const (
	TenantsPrefix   = "tenants/"
	SysPrefix       = "_sys/"
	BaselineKey     = "_sys/baseline.json"
	watermarkPrefix = "_sys/watermarks/"
)

// TenantPrefix is the key prefix of every object of tenant t.
func TenantPrefix(t TenantID) string { return TenantsPrefix + EscapeName(string(t)) + "/" }

// ManifestPrefix is the prefix of t's manifest log.
func ManifestPrefix(t TenantID) string { return TenantPrefix(t) + "manifest/" }

// ManifestKey is the key of t's manifest entry number seq (1-based).
func ManifestKey(t TenantID, seq uint64) string {
	return fmt.Sprintf("%s%020d.json", ManifestPrefix(t), seq)
}

// ParseManifestSeq returns the entry number of a manifest key.
func ParseManifestSeq(key string) (uint64, error) {
	i := strings.LastIndexByte(key, '/')
	name := strings.TrimSuffix(key[i+1:], ".json")
	n, err := strconv.ParseUint(name, 10, 64)
	if err != nil || len(name) != 20 {
		return 0, fmt.Errorf("manifest key %q: not a manifest entry name", key)
	}
	return n, nil
}

// TableKeyName is the escaped "schema.table" used in object names.
func TableKeyName(schema, table string) string {
	return EscapeName(schema) + "." + EscapeName(table)
}

// ObjectDir returns a fresh directory for one segment or snapshot of t; kind
// is "segments" or "snapshots". The random part keeps a rewrite after a crash
// from ever overwriting an object another writer's manifest references.
func ObjectDir(t TenantID, kind string, lsn LSN) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s%s/%016X-%s/", TenantPrefix(t), kind, uint64(lsn), hex.EncodeToString(r[:]))
}

// TenantFromKey returns the tenant whose prefix holds key.
func TenantFromKey(key string) (TenantID, error) {
	rest, ok := strings.CutPrefix(key, TenantsPrefix)
	if !ok {
		return "", fmt.Errorf("key %q is not under %s", key, TenantsPrefix)
	}
	esc, _, _ := strings.Cut(rest, "/")
	s, err := UnescapeName(esc)
	if err != nil {
		return "", err
	}
	return TenantID(s), nil
}

// WatermarkKey is the key of partition p's archived watermark.
func WatermarkKey(p int) string { return fmt.Sprintf("%sp%04d.json", watermarkPrefix, p) }

// ParseWatermarkKey returns the partition whose watermark key is key; ok
// is false for any other key (an S3 server's in-progress upload may be
// listed under the prefix too).
func ParseWatermarkKey(key string) (p int, ok bool) {
	name, found := strings.CutPrefix(key, watermarkPrefix)
	if !found {
		return 0, false
	}
	if _, err := fmt.Sscanf(name, "p%d.json", &p); err != nil || p < 0 || WatermarkKey(p) != key {
		return 0, false
	}
	return p, true
}

// WatermarkPrefix is the prefix of all partition watermarks.
const WatermarkPrefix = watermarkPrefix

// Subject is the JetStream subject of partition p under a subject prefix
// such as "tw": "tw.p0007". Tenant ids never appear in subjects.
func Subject(prefix string, p int) string { return fmt.Sprintf("%s.p%04d", prefix, p) }

// RestoreSchemaComment starts the comment a side-by-side restore puts on the
// schema it creates; capture never archives tables in such schemas, so a
// restore into the source database does not feed back into the archive.
const RestoreSchemaComment = "tenantwal restore"

// RestoreSetting is the custom setting a restore's transaction sets
// ("on"): the DDL event trigger records nothing for it (a restore's tables
// are never archived).
const RestoreSetting = "tenantwal.restoring"
