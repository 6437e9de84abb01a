package pgoutput_test

import (
	"strconv"
	"testing"

	"github.com/tenantwal/tenantwal/capture/pgoutput"
)

func BenchmarkParseInsert(b *testing.B) {
	cols := make([]pgoutput.TupleColumn, 10)
	for i := range cols {
		cols[i] = text("value-" + strconv.Itoa(i*7919))
	}
	data := encode(&pgoutput.Insert{RelID: 16390, New: pgoutput.Tuple{Columns: cols}})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pgoutput.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseUpdateOldKey(b *testing.B) {
	data := encode(&pgoutput.Update{RelID: 16390, OldKind: pgoutput.OldKey,
		Old: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("42"), text("1001"), null, null, null}},
		New: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("42"), text("1002"), text("ada@example.org"), text("13.00"), unchanged}},
	})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pgoutput.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
