package segment_test

import (
	"os"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/parquet"
)

// TestReadsDictionaryEncodedFiles reads a file that the writer of format 1
// wrote before it chose encodings per column (every column but the boolean
// one dictionary-encoded, commit c7b14b5): archived objects of that time stay
// readable, byte for byte. The file holds wideRows(1000) in row groups of
// 400 rows; it cannot be regenerated, since today's writer encodes
// differently.
func TestReadsDictionaryEncodedFiles(t *testing.T) {
	b, err := os.ReadFile("testdata/format1-dictionary.parquet")
	if err != nil {
		t.Fatal(err)
	}
	f := openRaw(t, b)
	if f.NumRowGroups() != 3 {
		t.Fatalf("%d row groups, want 3", f.NumRowGroups())
	}
	for rg := range f.NumRowGroups() {
		md := f.MetaData().RowGroup(rg)
		for c := range md.NumColumns() {
			cc, err := md.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Type() == parquet.Types.Boolean {
				continue
			}
			if !slices.Contains(cc.Encodings(), parquet.Encodings.RLEDict) {
				t.Fatalf("row group %d column %s: encodings %v, want the dictionary-encoded file", rg, cc.PathInSchema(), cc.Encodings())
			}
		}
	}
	gotTS, got := readFile(t, b)
	if gotTS.Version != wideTable().Version {
		t.Fatalf("table version %s, want %s", gotTS.Version, wideTable().Version)
	}
	sameRows(t, got, wideRows(1000))
}
