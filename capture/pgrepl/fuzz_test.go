package pgrepl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func FuzzParseXLogData(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 23))
	f.Add(make([]byte, 24))
	f.Add(append(binary.BigEndian.AppendUint64(make([]byte, 16), 1<<63), 'B', 0, 0))
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ParseXLogData(b)
		if len(b) < 24 {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%d bytes: err = %v", len(b), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x.Data, b[24:]) {
			t.Fatal("Data is not the payload")
		}
		if got := pgMicros(x.ServerTime); got != int64(binary.BigEndian.Uint64(b[16:])) {
			t.Fatalf("ServerTime does not round-trip: %d", got)
		}
		if _, err := ParsePrimaryKeepalive(b); err != nil {
			t.Fatal(err)
		}
	})
}
