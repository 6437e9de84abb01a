// Package catalog reads and writes the archive's metadata in an object store:
// each tenant's append-only manifest log, the per-partition watermarks and
// the baseline, and derives what a tenant can be restored to. It is shared by
// the archiver (writer) and the replayer and CLI (readers).
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// ErrUnknownTenant is returned when the archive holds nothing for a tenant.
var ErrUnknownTenant = errors.New("unknown tenant")

// ReadManifest returns tenant t's manifest entries in log order. A missing
// tenant yields ErrUnknownTenant. An entry that does not decode, names
// another tenant or number than its key, or a missing entry (the log is
// numbered 1, 2, ... without holes, since Append only ever adds the next
// number) is an error: a restore must never proceed over a damaged log.
func ReadManifest(ctx context.Context, store objstore.Store, t schemas.TenantID) ([]*schemas.ManifestEntry, error) {
	var out []*schemas.ManifestEntry
	for info, err := range store.List(ctx, schemas.ManifestPrefix(t)) {
		if err != nil {
			return nil, fmt.Errorf("list manifest of tenant %q: %w", t, err)
		}
		seq, err := schemas.ParseManifestSeq(info.Key)
		if err != nil {
			return nil, err
		}
		if want := uint64(len(out)) + 1; seq != want {
			return nil, fmt.Errorf("manifest of tenant %q: entry %d is missing (next is %s): the log was damaged or altered; refusing to read it",
				t, want, info.Key)
		}
		b, err := getAll(ctx, store, info.Key)
		if err != nil {
			return nil, err
		}
		e, err := schemas.DecodeManifestEntry(b)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", info.Key, err)
		}
		if e.Seq != seq || e.Tenant != t {
			return nil, fmt.Errorf("manifest %s: entry says tenant %q seq %d: the object was moved or altered", info.Key, e.Tenant, e.Seq)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %q: the archive at %s has no manifest for it; run `tenantwal ls` to see the archived tenants", ErrUnknownTenant, t, store)
	}
	return out, nil
}

// Append writes e as entry number next (1-based) of its tenant's log with a
// conditional create. If that number is taken (another writer got there
// first, or an earlier attempt of ours did), it returns an error wrapping
// objstore.ErrExists and writes nothing: the caller re-reads the log.
func Append(ctx context.Context, store objstore.Store, e *schemas.ManifestEntry, next uint64) error {
	e.Version = schemas.ManifestVersion
	e.Seq = next
	if err := e.Validate(); err != nil {
		return fmt.Errorf("append manifest entry: %w", err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode manifest entry: %w", err)
	}
	key := schemas.ManifestKey(e.Tenant, next)
	if err := store.PutIfAbsent(ctx, key, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("commit manifest entry %s: %w", key, err)
	}
	return nil
}

// LastSeq returns the number of the newest entry of t's log, 0 if none,
// reading only keys.
func LastSeq(ctx context.Context, store objstore.Store, t schemas.TenantID) (uint64, error) {
	var last uint64
	for info, err := range store.List(ctx, schemas.ManifestPrefix(t)) {
		if err != nil {
			return 0, fmt.Errorf("list manifest of tenant %q: %w", t, err)
		}
		seq, err := schemas.ParseManifestSeq(info.Key)
		if err != nil {
			return 0, err
		}
		last = max(last, seq)
	}
	return last, nil
}

// ListTenants returns every tenant with at least one object, in key order.
func ListTenants(ctx context.Context, store objstore.Store) ([]schemas.TenantID, error) {
	var out []schemas.TenantID
	var lastEsc string
	for info, err := range store.List(ctx, schemas.TenantsPrefix) {
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		esc, _, _ := strings.Cut(strings.TrimPrefix(info.Key, schemas.TenantsPrefix), "/")
		if esc == lastEsc {
			continue
		}
		lastEsc = esc
		t, err := schemas.TenantFromKey(info.Key)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// ReadBaseline returns the archive's baseline, or objstore.ErrNotFound.
func ReadBaseline(ctx context.Context, store objstore.Store) (*schemas.Baseline, error) {
	var b schemas.Baseline
	if err := getJSON(ctx, store, schemas.BaselineKey, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// WriteBaseline stores the baseline, replacing any previous one.
func WriteBaseline(ctx context.Context, store objstore.Store, b *schemas.Baseline) error {
	b.Version = 1
	return putJSON(ctx, store, schemas.BaselineKey, b)
}

// ReadWatermarks returns every partition's watermark by partition number.
func ReadWatermarks(ctx context.Context, store objstore.Store) (map[int]*schemas.Watermark, error) {
	out := map[int]*schemas.Watermark{}
	for info, err := range store.List(ctx, schemas.WatermarkPrefix) {
		if err != nil {
			return nil, fmt.Errorf("list watermarks: %w", err)
		}
		if _, ok := schemas.ParseWatermarkKey(info.Key); !ok {
			continue // not a watermark: an upload in progress (versitygw lists its temporary files)
		}
		var w schemas.Watermark
		if err := getJSON(ctx, store, info.Key, &w); err != nil {
			return nil, err
		}
		out[w.Partition] = &w
	}
	return out, nil
}

// WriteWatermark stores partition w.Partition's watermark.
func WriteWatermark(ctx context.Context, store objstore.Store, w *schemas.Watermark) error {
	w.Version = 1
	return putJSON(ctx, store, schemas.WatermarkKey(w.Partition), w)
}

func getAll(ctx context.Context, store objstore.Store, key string) ([]byte, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

func getJSON(ctx context.Context, store objstore.Store, key string, v any) error {
	b, err := getAll(ctx, store, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

func putJSON(ctx context.Context, store objstore.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return store.Put(ctx, key, bytes.NewReader(b))
}

// ReadEntry reads entry number seq of t's manifest log.
func ReadEntry(ctx context.Context, store objstore.Store, t schemas.TenantID, seq uint64) (*schemas.ManifestEntry, error) {
	key := schemas.ManifestKey(t, seq)
	b, err := getAll(ctx, store, key)
	if err != nil {
		return nil, err
	}
	e, err := schemas.DecodeManifestEntry(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", key, err)
	}
	return e, nil
}
