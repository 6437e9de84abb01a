package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// ReadGaps returns the archive's gap records in order (none for an archive
// that never lost its position). A record that does not decode, or a
// missing number, is an error: restores must not step over an unknown gap.
func ReadGaps(ctx context.Context, store objstore.Store) ([]*schemas.Gap, error) {
	var out []*schemas.Gap
	for info, err := range store.List(ctx, schemas.GapPrefix) {
		if err != nil {
			return nil, fmt.Errorf("list gap records: %w", err)
		}
		b, err := getAll(ctx, store, info.Key)
		if err != nil {
			return nil, err
		}
		g, err := schemas.DecodeGap(b)
		if err != nil {
			return nil, fmt.Errorf("gap record %s: %w", info.Key, err)
		}
		if want := uint64(len(out)) + 1; g.Seq != want || schemas.GapKey(g.Seq) != info.Key {
			return nil, fmt.Errorf("gap record %s: numbered %d, want %d: the records were damaged or altered", info.Key, g.Seq, want)
		}
		out = append(out, g)
	}
	return out, nil
}

// WriteGap stores gap record g.Seq, replacing an earlier version of it (a
// fresh baseline that was restarted widens its gap).
func WriteGap(ctx context.Context, store objstore.Store, g *schemas.Gap) error {
	g.Version = schemas.GapVersion
	if err := g.Validate(); err != nil {
		return fmt.Errorf("write gap record: %w", err)
	}
	b, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode gap record: %w", err)
	}
	if err := store.Put(ctx, schemas.GapKey(g.Seq), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("write gap record %d: %w", g.Seq, err)
	}
	return nil
}
