package replayer

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// VerifyObject reads one archived object the way a restore does and checks
// it against its manifest reference: under the tenant's prefix, the recorded
// size and SHA-256, a readable Parquet file of the named table, the recorded
// row count, and every row's position within the recorded range. Errors
// about the object's content wrap ErrCorrupt.
func VerifyObject(ctx context.Context, store objstore.Store, tenant schemas.TenantID, ref schemas.ObjectRef, tempDir string) (err error) {
	obj, err := fetch(ctx, store, tenant, ref, tempDir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, obj.Close()) }()
	r, err := segment.NewReader(obj, obj.size)
	if err != nil {
		return fmt.Errorf("%w: object %s: %w", ErrCorrupt, ref.Key, err)
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	if t := r.Table(); t == nil || t.QualifiedName() != ref.Table {
		return fmt.Errorf("%w: object %s does not hold table %s", ErrCorrupt, ref.Key, ref.Table)
	}
	var rows int64
	for {
		if rows%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		meta, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: object %s: row %d: %w", ErrCorrupt, ref.Key, rows, err)
		}
		pos := schemas.Pos{LSN: meta.LSN, Seq: meta.Seq}
		if pos.Less(ref.First) || ref.Last.Less(pos) {
			return fmt.Errorf("%w: object %s: row %d at %s is outside the recorded range %s..%s", ErrCorrupt, ref.Key, rows, pos, ref.First, ref.Last)
		}
		rows++
	}
	if rows != ref.Rows {
		return fmt.Errorf("%w: object %s holds %d rows, the manifest says %d", ErrCorrupt, ref.Key, rows, ref.Rows)
	}
	return nil
}
