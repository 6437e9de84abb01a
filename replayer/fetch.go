package replayer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// ErrCorrupt is returned (wrapped) when an archived object does not match
// its manifest entry: a restore never proceeds over damaged data.
var ErrCorrupt = errors.New("archived object does not match the manifest")

// memoryLimit is the largest object read into memory; bigger ones are
// downloaded to a temporary file.
const memoryLimit = 16 << 20

// object is a downloaded, verified object, readable at random.
type object struct {
	io.ReaderAt
	size int64
	file *os.File // nil when in memory
}

func (o *object) Close() error {
	if o.file == nil {
		return nil
	}
	name := o.file.Name()
	err := o.file.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// fetch downloads ref from the store and checks it against the manifest:
// it must lie under tenant's prefix and have the recorded size and SHA-256.
func fetch(ctx context.Context, store objstore.Store, tenant schemas.TenantID, ref schemas.ObjectRef, tempDir string) (*object, error) {
	if prefix := schemas.TenantPrefix(tenant); !strings.HasPrefix(ref.Key, prefix) {
		return nil, fmt.Errorf("object %s is outside tenant %q's prefix %s: refusing to read it", ref.Key, tenant, prefix)
	}
	info, err := store.Stat(ctx, ref.Key)
	if err != nil {
		return nil, fmt.Errorf("object %s of table %s: %w", ref.Key, ref.Table, err)
	}
	if info.Size != ref.Bytes {
		return nil, fmt.Errorf("%w: object %s of table %s is %d bytes, the manifest says %d bytes with SHA-256 %s: the object is damaged or was altered; refusing to restore from it",
			ErrCorrupt, ref.Key, ref.Table, info.Size, ref.Bytes, ref.SHA256)
	}
	rc, err := store.Get(ctx, ref.Key)
	if err != nil {
		return nil, fmt.Errorf("object %s of table %s: %w", ref.Key, ref.Table, err)
	}
	defer rc.Close()

	h := sha256.New()
	obj := &object{size: ref.Bytes}
	var n int64
	if ref.Bytes <= memoryLimit {
		var buf bytes.Buffer
		buf.Grow(int(ref.Bytes))
		n, err = io.Copy(io.MultiWriter(&buf, h), rc)
		obj.ReaderAt = bytes.NewReader(buf.Bytes())
	} else {
		f, ferr := os.CreateTemp(tempDir, "tenantwal-restore-*.parquet")
		if ferr != nil {
			return nil, fmt.Errorf("object %s: temporary file: %w", ref.Key, ferr)
		}
		obj.file, obj.ReaderAt = f, f
		n, err = io.Copy(io.MultiWriter(f, h), rc)
	}
	if err == nil {
		err = verify(ref, n, h.Sum(nil))
	}
	if err != nil {
		_ = obj.Close()
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("read object %s of table %s: %w", ref.Key, ref.Table, err)
		}
		return nil, err
	}
	return obj, nil
}

func verify(ref schemas.ObjectRef, n int64, sum []byte) error {
	if n != ref.Bytes {
		return fmt.Errorf("%w: object %s of table %s: read %d bytes, the manifest says %d bytes with SHA-256 %s: refusing to restore from it",
			ErrCorrupt, ref.Key, ref.Table, n, ref.Bytes, ref.SHA256)
	}
	if got := hex.EncodeToString(sum); !strings.EqualFold(got, ref.SHA256) {
		return fmt.Errorf("%w: object %s of table %s has SHA-256 %s, the manifest says %s: the object is damaged or was altered; refusing to restore from it",
			ErrCorrupt, ref.Key, ref.Table, got, ref.SHA256)
	}
	return nil
}
