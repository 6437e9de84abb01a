package pgoutput_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tenantwal/tenantwal/capture/pgoutput"
)

// FuzzParse checks that Parse never panics, that it fails only with a
// *ParseError, and that whatever it accepts is canonical: encoding the result
// by the documented layout gives back the input exactly. Seeds are the
// fixtures plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, fx := range fixtures {
		f.Add(encode(fx.msg))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		m, err := pgoutput.Parse(data)
		if !bytes.Equal(in, data) {
			t.Fatalf("Parse modified its input")
		}
		if err != nil {
			var pe *pgoutput.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v, want *ParseError", err, err)
			}
			if !errors.Is(err, pgoutput.ErrMalformed) && !errors.Is(err, pgoutput.ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrUnsupported", err)
			}
			if pe.Offset < 0 || pe.Offset > len(data) {
				t.Fatalf("error offset %d outside the %d-byte message", pe.Offset, len(data))
			}
			return
		}
		if m.Type() != pgoutput.MessageType(data[0]) {
			t.Fatalf("Type() = %v for first byte %q", m.Type(), data[0])
		}
		if got := encode(m); !bytes.Equal(got, data) {
			t.Fatalf("round trip of %#v\n got % x\nwant % x", m, got, data)
		}
	})
}
