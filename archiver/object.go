package archiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/schemas"
)

// writeObject writes one table's rows as a Parquet file in the spill dir,
// then stores it under dir. kind is the manifest entry's (snapshot or
// segment). The checksum covers the stored bytes.
func (w *worker) writeObject(ctx context.Context, dir, kind string, tr *tableRows) (schemas.ObjectRef, error) {
	ts := tr.ts
	ref := schemas.ObjectRef{
		Key:           dir + schemas.TableKeyName(ts.Schema, ts.Name) + "-" + ts.Version + ".parquet",
		Table:         ts.QualifiedName(),
		SchemaVersion: ts.Version,
	}
	f, err := os.CreateTemp(w.a.cfg.SpillDir, "tenantwal-*.parquet")
	if err != nil {
		return ref, fmt.Errorf("create spill file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	sw, err := segment.NewWriter(cw, ts, w.a.cfg.segmentOptions(kind))
	if err != nil {
		return ref, err
	}
	for i := range tr.rows {
		r := &tr.rows[i]
		if err := sw.Write(r.meta, r.vals); err != nil {
			return ref, fmt.Errorf("write %s: %w", ref.Key, err)
		}
	}
	if err := sw.Close(); err != nil {
		return ref, fmt.Errorf("write %s: %w", ref.Key, err)
	}
	st := sw.Stats()
	ref.Rows, ref.First, ref.Last = st.Rows, st.First, st.Last
	ref.Bytes = cw.n
	ref.SHA256 = hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ref, err
	}
	if err := w.a.store.Put(ctx, ref.Key, f); err != nil {
		return ref, fmt.Errorf("store %s: %w", ref.Key, err)
	}
	w.a.metrics.objects.Inc()
	w.a.metrics.rows.Add(float64(st.Rows))
	w.a.metrics.bytes.Add(float64(ref.Bytes))
	return ref, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
