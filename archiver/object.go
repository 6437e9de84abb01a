package archiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/schemas"
)

// writeObject writes one table's rows as a Parquet file (in memory when
// small, else in the spill dir), then stores it under dir, its name ending
// in suffix (set for a version's second stretch in one entry). kind is the
// manifest entry's (snapshot or segment). The checksum covers the stored
// bytes.
func (w *worker) writeObject(ctx context.Context, dir, suffix, kind string, tr *tableRows) (schemas.ObjectRef, error) {
	ts := tr.ts
	ref := schemas.ObjectRef{
		Key:           dir + schemas.TableKeyName(ts.Schema, ts.Name) + "-" + ts.Version + suffix + ".parquet",
		Table:         ts.QualifiedName(),
		SchemaVersion: ts.Version,
	}
	sp := newSpill(w.a.cfg.SpillDir)
	defer sp.close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(sp, h)}
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
	ref.Rows, ref.First, ref.Last, ref.MinTime = st.Rows, st.First, st.Last, st.MinTime
	ref.Bytes = cw.n
	ref.SHA256 = hex.EncodeToString(h.Sum(nil))
	r, err := sp.reader()
	if err != nil {
		return ref, fmt.Errorf("read back %s: %w", ref.Key, err)
	}
	if err := w.a.store.Put(ctx, ref.Key, r); err != nil {
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
