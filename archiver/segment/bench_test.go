package segment_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/schemas"
)

// benchTable is a typical 10-column OLTP row.
func benchTable() *schemas.TableSchema {
	return &schemas.TableSchema{Schema: "public", Name: "events", Columns: []schemas.Column{
		{Name: "id", TypeOID: 20, Key: true},
		{Name: "tenant_id", TypeOID: 23},
		{Name: "kind", TypeOID: 25},
		{Name: "status", TypeOID: 16400},
		{Name: "active", TypeOID: 16},
		{Name: "qty", TypeOID: 21},
		{Name: "amount", TypeOID: 1700},
		{Name: "created_at", TypeOID: 1184},
		{Name: "payload", TypeOID: 3802},
		{Name: "note", TypeOID: 25},
	}}
}

func benchRows(n int) []row {
	rng := rand.New(rand.NewPCG(7, 8))
	kinds := []string{"order.created", "order.paid", "order.shipped", "user.login", "user.logout"}
	rows := make([]row, n)
	for i := range rows {
		v := []schemas.Value{
			txt(fmt.Sprint(1_000_000 + i)),
			txt(fmt.Sprint(42)),
			txt(kinds[rng.IntN(len(kinds))]),
			txt([]string{"new", "open", "closed"}[rng.IntN(3)]),
			txt([]string{"t", "f"}[rng.IntN(2)]),
			txt(fmt.Sprint(rng.IntN(100))),
			txt(fmt.Sprintf("%d.%02d", rng.IntN(100000), rng.IntN(100))),
			txt(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond).Format("2006-01-02 15:04:05.000000-07")),
			txt(fmt.Sprintf(`{"sku": "A-%d", "n": %d}`, rng.IntN(1000), rng.IntN(10))),
			null,
		}
		if rng.IntN(3) == 0 {
			v[9] = txt(fmt.Sprintf("note %d", rng.Uint32()))
		}
		rows[i] = row{segment.Meta{LSN: schemas.LSN(0x1000000 + i/4*0x80), Seq: uint32(i % 4), Op: 'I',
			CommitTime: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).Add(time.Duration(i/4) * time.Millisecond), XID: uint32(1000 + i/4)}, v}
	}
	return rows
}

type countingDiscard struct{ n int64 }

func (c *countingDiscard) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func BenchmarkWrite(b *testing.B) {
	for _, comp := range []string{"zstd", "snappy", "none"} {
		b.Run(comp, func(b *testing.B) {
			ts := benchTable()
			rows := benchRows(8192)
			var out countingDiscard
			b.ReportAllocs()
			b.ResetTimer()
			w, err := segment.NewWriter(&out, ts, segment.Options{Compression: comp})
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				r := &rows[i%len(rows)]
				if err := w.Write(r.m, r.vals); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(out.n)/float64(b.N), "B/row")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	rows := benchRows(8192)
	all := make([]row, 0, 200_000)
	for len(all) < cap(all) {
		all = append(all, rows...)
	}
	data, _ := writeFile(b, benchTable(), segment.Options{}, all[:cap(all)])
	b.ReportAllocs()
	b.ResetTimer()
	var r *segment.Reader
	for i := 0; i < b.N; i++ {
		if r == nil {
			var err error
			if r, err = segment.NewReader(bytes.NewReader(data), int64(len(data))); err != nil {
				b.Fatal(err)
			}
		}
		_, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			r.Close()
			r = nil
			i--
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWriteOrders writes the bench's orders rows (ordersRows) at the
// segments' default zstd level and at the snapshots' level 9.
func BenchmarkWriteOrders(b *testing.B) {
	rows := ordersRows(30_000)
	for _, level := range []int{0, 9} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			var out countingDiscard
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w, err := segment.NewWriter(&out, ordersTable(), segment.Options{CompressionLevel: level})
				if err != nil {
					b.Fatal(err)
				}
				for j := range rows {
					if err := w.Write(rows[j].m, rows[j].vals); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			n := float64(b.N) * float64(len(rows))
			b.ReportMetric(n/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(out.n)/n, "B/row")
		})
	}
}

// BenchmarkWriteSmall writes one-row objects, the archiver's case with many
// tenants each with a change per flush: the per-object fixed cost.
func BenchmarkWriteSmall(b *testing.B) {
	rows := benchRows(1)
	for _, level := range []int{0, 9} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			var out countingDiscard
			b.ReportAllocs()
			for b.Loop() {
				w, err := segment.NewWriter(&out, benchTable(), segment.Options{CompressionLevel: level})
				if err != nil {
					b.Fatal(err)
				}
				if err := w.Write(rows[0].m, rows[0].vals); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.n)/float64(b.N), "B/object")
		})
	}
}
