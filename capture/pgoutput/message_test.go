package pgoutput_test

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/capture/pgoutput"
)

var commitTime = time.Date(2024, 3, 9, 14, 7, 31, 123456000, time.UTC)

func text(s string) pgoutput.TupleColumn {
	return pgoutput.TupleColumn{Kind: pgoutput.ColumnText, Data: []byte(s)}
}

var (
	null      = pgoutput.TupleColumn{Kind: pgoutput.ColumnNull}
	unchanged = pgoutput.TupleColumn{Kind: pgoutput.ColumnUnchanged}
)

// fixtures holds one or more messages of every type, in the shapes a
// pgoutput session of tenantwal's produces.
var fixtures = []struct {
	name string
	msg  pgoutput.Message
}{
	{"begin", &pgoutput.Begin{FinalLSN: 0x16_B374D848, CommitTime: commitTime, XID: 7431}},
	{"begin before 2000", &pgoutput.Begin{FinalLSN: 1, CommitTime: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), XID: 1}},
	{"commit", &pgoutput.Commit{CommitLSN: 0x16_B374D848, EndLSN: 0x16_B374D878, CommitTime: commitTime}},
	{"origin", &pgoutput.Origin{CommitLSN: 0x3_00000028, Name: "pg_16402"}},
	{"relation", &pgoutput.Relation{
		RelID: 16390, Namespace: "public", Name: "accounts", ReplicaIdentity: 'd',
		Columns: []pgoutput.RelationColumn{
			{Flags: 1, Name: "tenant_id", TypeOID: 20, TypeMod: -1},
			{Flags: 1, Name: "id", TypeOID: 20, TypeMod: -1},
			{Name: "email", TypeOID: 25, TypeMod: -1},
			{Name: "balance", TypeOID: 1700, TypeMod: 12<<16 | 2 + 4},
			{Name: "note", TypeOID: 1043, TypeMod: 64 + 4},
		},
	}},
	{"relation no columns", &pgoutput.Relation{RelID: 1, Namespace: "", Name: "t", ReplicaIdentity: 'n', Columns: []pgoutput.RelationColumn{}}},
	{"type", &pgoutput.TypeMsg{TypeID: 16400, Namespace: "public", Name: "mood"}},
	{"insert", &pgoutput.Insert{RelID: 16390, New: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{
		text("42"), text("1001"), text("ada@example.com"), text("12.50"), null,
	}}}},
	{"insert binary and empty", &pgoutput.Insert{RelID: 7, New: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{
		{Kind: pgoutput.ColumnBinary, Data: []byte{0, 0, 0, 0, 0, 0, 0, 42}}, text(""),
	}}}},
	{"update no old", &pgoutput.Update{RelID: 16390, New: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{
		text("42"), text("1001"), text("ada@example.org"), text("13.00"), unchanged,
	}}}},
	{"update old key", &pgoutput.Update{RelID: 16390, OldKind: pgoutput.OldKey,
		Old: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("42"), text("1001"), null, null, null}},
		New: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("42"), text("1002"), text("ada@example.org"), text("13.00"), unchanged}},
	}},
	{"update old full", &pgoutput.Update{RelID: 16391, OldKind: pgoutput.OldFull,
		Old: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("42"), text("x"), null}},
		New: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("42"), text("y"), null}},
	}},
	{"delete key", &pgoutput.Delete{RelID: 16390, OldKind: pgoutput.OldKey,
		Old: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("42"), text("1001"), null, null, null}}}},
	{"delete full", &pgoutput.Delete{RelID: 16391, OldKind: pgoutput.OldFull,
		Old: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("42"), text("y"), null}}}},
	{"truncate one", &pgoutput.Truncate{RelIDs: []uint32{16390}}},
	{"truncate several", &pgoutput.Truncate{Options: pgoutput.TruncateCascade | pgoutput.TruncateRestartIdentity, RelIDs: []uint32{16390, 16391, 16392}}},
	{"message transactional", &pgoutput.LogicalMessage{Flags: 1, LSN: 0x16_B374D900, Prefix: "tenantwal", Content: []byte(`{"forget":"acme"}`)}},
	{"message non-transactional", &pgoutput.LogicalMessage{Flags: 0, LSN: 0x16_B374DA00, Prefix: "heartbeat", Content: []byte{}}},
}

func TestParse(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			data := encode(fx.msg)
			got, err := pgoutput.Parse(data)
			if err != nil {
				t.Fatalf("Parse(% x): %v", data, err)
			}
			if !reflect.DeepEqual(got, fx.msg) {
				t.Fatalf("Parse(% x)\n got %#v\nwant %#v", data, got, fx.msg)
			}
			if got.Type() != pgoutput.MessageType(data[0]) {
				t.Fatalf("Type() = %v, first byte %q", got.Type(), data[0])
			}
		})
	}
}

// TestParseLiteralBytes checks the decoder and the test encoder against
// bytes written out by hand from the documented layouts.
func TestParseLiteralBytes(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want pgoutput.Message
	}{
		{"begin", []byte{
			'B',
			0, 0, 0, 0x16, 0xB3, 0x74, 0xD8, 0x48, // final LSN 16/B374D848
			0, 0, 0, 0, 0, 0, 0, 1, // 1 µs after 2000-01-01
			0, 0, 0x1D, 0x07, // xid 7431
		}, &pgoutput.Begin{FinalLSN: 0x16_B374D848, CommitTime: time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC), XID: 7431}},
		{"insert", []byte{
			'I',
			0, 0, 0x40, 0x06, // relid 16390
			'N',
			0, 3, // 3 columns
			't', 0, 0, 0, 2, '4', '2',
			'n',
			'u',
		}, &pgoutput.Insert{RelID: 16390, New: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("42"), null, unchanged}}}},
		{"update old key", []byte{
			'U',
			0, 0, 0x40, 0x06,
			'K', 0, 1, 't', 0, 0, 0, 1, '1',
			'N', 0, 1, 't', 0, 0, 0, 1, '2',
		}, &pgoutput.Update{RelID: 16390, OldKind: 'K',
			Old: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("1")}},
			New: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("2")}}}},
		{"truncate", []byte{
			'T',
			0, 0, 0, 2, // 2 relations
			1, // cascade
			0, 0, 0x40, 0x06,
			0, 0, 0x40, 0x07,
		}, &pgoutput.Truncate{Options: 1, RelIDs: []uint32{16390, 16391}}},
		{"relation", []byte{
			'R',
			0, 0, 0x40, 0x06,
			'p', 'u', 'b', 0,
			'a', 0,
			'f',
			0, 1,
			1, 'i', 'd', 0, 0, 0, 0, 20, 0xFF, 0xFF, 0xFF, 0xFF,
		}, &pgoutput.Relation{RelID: 16390, Namespace: "pub", Name: "a", ReplicaIdentity: 'f',
			Columns: []pgoutput.RelationColumn{{Flags: 1, Name: "id", TypeOID: 20, TypeMod: -1}}}},
		{"message", []byte{
			'M',
			1,
			0, 0, 0, 0, 0, 0, 0, 0x28,
			'p', 0,
			0, 0, 0, 2, 'h', 'i',
		}, &pgoutput.LogicalMessage{Flags: 1, LSN: 0x28, Prefix: "p", Content: []byte("hi")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pgoutput.Parse(tt.data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
			if enc := encode(tt.want); !bytes.Equal(enc, tt.data) {
				t.Fatalf("test encoder disagrees with the literal:\n got % x\nwant % x", enc, tt.data)
			}
		})
	}
}

func TestParseTruncatedAtEveryOffset(t *testing.T) {
	for _, fx := range fixtures {
		data := encode(fx.msg)
		for n := range len(data) {
			prefix := bytes.Clone(data[:n])
			m, err := pgoutput.Parse(prefix)
			if err == nil {
				t.Fatalf("%s: Parse(first %d of %d bytes) = %#v, want error", fx.name, n, len(data), m)
			}
			checkMalformed(t, err, prefix)
		}
	}
}

func TestParseTrailingBytes(t *testing.T) {
	for _, fx := range fixtures {
		data := append(encode(fx.msg), 0)
		_, err := pgoutput.Parse(data)
		if err == nil {
			t.Fatalf("%s: Parse with a trailing byte succeeded", fx.name)
		}
		checkMalformed(t, err, data)
		if pe := err.(*pgoutput.ParseError); pe.Offset != len(data)-1 || !strings.Contains(pe.Reason, "trailing") {
			t.Fatalf("%s: %v, want trailing bytes at %d", fx.name, err, len(data)-1)
		}
	}
}

// checkMalformed checks that err is a *ParseError for data that wraps
// ErrMalformed and points inside data.
func checkMalformed(t testing.TB, err error, data []byte) {
	t.Helper()
	var pe *pgoutput.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse(% x): error %T %v, want *ParseError", data, err, err)
	}
	if !errors.Is(err, pgoutput.ErrMalformed) {
		t.Fatalf("Parse(% x): %v does not wrap ErrMalformed", data, err)
	}
	if pe.Offset < 0 || pe.Offset > len(data) {
		t.Fatalf("Parse(% x): offset %d outside the message", data, pe.Offset)
	}
	if len(data) > 0 && pe.Type != pgoutput.MessageType(data[0]) {
		t.Fatalf("Parse(% x): error names type %v", data, pe.Type)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		offset int
		reason string
	}{
		{"empty", nil, 0, "empty message"},
		{"unknown type", []byte{'Z', 0, 0}, 0, "unknown message type"},
		{"insert without N", []byte{'I', 0, 0, 0, 1, 'K', 0, 0}, 5, "new tuple marker"},
		{"update bad marker", []byte{'U', 0, 0, 0, 1, 'X', 0, 0}, 5, "not K, O or N"},
		{"update old without new", []byte{'U', 0, 0, 0, 1, 'K', 0, 1, 'n', 'K', 0, 1, 'n'}, 9, "new tuple marker"},
		{"update old tuple bad kind", []byte{'U', 0, 0, 0, 1, 'O', 0, 1, 'x', 'N', 0, 1, 'n'}, 8, "kind 'x'"},
		{"delete with N", []byte{'D', 0, 0, 0, 1, 'N', 0, 0}, 5, "not K or O"},
		{"bad column kind", []byte{'I', 0, 0, 0, 1, 'N', 0, 2, 'n', 'z'}, 9, "column 1: kind 'z'"},
		{"negative column length", []byte{'I', 0, 0, 0, 1, 'N', 0, 1, 't', 0xFF, 0xFF, 0xFF, 0xFF}, 9, "negative column length -1"},
		{"oversized column length", []byte{'I', 0, 0, 0, 1, 'N', 0, 1, 't', 0x7F, 0xFF, 0xFF, 0xFF, 'a'}, 9, "exceeds the 1 bytes left"},
		{"hostile column count", []byte{'I', 0, 0, 0, 1, 'N', 0xFF, 0xFF, 'n', 'n'}, 6, "column count 65535 exceeds the 2 bytes left"},
		{"hostile new column count in update", []byte{'U', 0, 0, 0, 1, 'K', 0, 0, 'N', 0xFF, 0xFF}, 9, "column count 65535"},
		{"hostile relation column count", append([]byte{'R', 0, 0, 0, 1, 0, 't', 0, 'd', 0xFF, 0xFF}, make([]byte, 100)...), 9, "column count 65535"},
		{"negative truncate count", []byte{'T', 0xFF, 0xFF, 0xFF, 0xFF, 0}, 1, "negative relation count"},
		{"hostile truncate count", []byte{'T', 0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1}, 1, "relation count 2147483647"},
		{"unterminated name", []byte{'O', 0, 0, 0, 0, 0, 0, 0, 1, 'a', 'b'}, 9, "origin name is not NUL-terminated"},
		{"negative content length", []byte{'M', 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x80, 0, 0, 0}, 11, "negative content length"},
		{"oversized content length", []byte{'M', 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9, 'x'}, 11, "content length 9 exceeds"},
		{"short begin", []byte{'B', 0, 0}, 1, "truncated final LSN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := pgoutput.Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse = %#v, want error", m)
			}
			checkMalformed(t, err, tt.data)
			pe := err.(*pgoutput.ParseError)
			if pe.Offset != tt.offset || !strings.Contains(pe.Reason, tt.reason) {
				t.Fatalf("error %q (offset %d), want offset %d and reason containing %q", err, pe.Offset, tt.offset, tt.reason)
			}
		})
	}
}

func TestParseErrorNamesTypeAndOffset(t *testing.T) {
	_, err := pgoutput.Parse([]byte{'I', 0, 0, 0, 1, 'N', 0, 1, 'q'})
	want := "pgoutput: malformed Insert message at byte 8: column 0: kind 'q' is not n, u, t or b"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestParseStreamingUnsupported(t *testing.T) {
	for _, b := range []byte{'S', 'E', 'c', 'A'} {
		_, err := pgoutput.Parse([]byte{b, 0, 0, 0, 1})
		if !errors.Is(err, pgoutput.ErrUnsupported) || !pgoutput.IsUnsupported(err) || errors.Is(err, pgoutput.ErrMalformed) {
			t.Fatalf("%q: err = %v, want ErrUnsupported", b, err)
		}
		if !strings.Contains(err.Error(), "streaming messages need protocol version 2, which tenantwal does not request") {
			t.Fatalf("%q: err = %v", b, err)
		}
	}
	_, err := pgoutput.Parse([]byte{'P'})
	if !pgoutput.IsUnsupported(err) || !strings.Contains(err.Error(), "two-phase") {
		t.Fatalf("Prepare: err = %v, want ErrUnsupported", err)
	}
}

// TestParseHostileCountsAllocateLittle checks that counts are bounded by the
// bytes that follow them before anything is allocated for them.
func TestParseHostileCountsAllocateLittle(t *testing.T) {
	hostile := [][]byte{
		{'I', 0, 0, 0, 1, 'N', 0xFF, 0xFF, 'n', 'n'},
		{'D', 0, 0, 0, 1, 'K', 0xFF, 0xFF, 'n', 'n'},
		{'U', 0, 0, 0, 1, 'N', 0xFF, 0xFF, 'n', 'n'},
		{'U', 0, 0, 0, 1, 'K', 0, 0, 'N', 0xFF, 0xFF},
		{'R', 0, 0, 0, 1, 0, 't', 0, 'd', 0xFF, 0xFF, 0, 'a', 0},
		{'T', 0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1},
		{'M', 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x7F, 0xFF, 0xFF, 0xFF},
	}
	const runs = 100
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		for _, data := range hostile {
			if _, err := pgoutput.Parse(data); err == nil {
				t.Fatalf("Parse(% x) succeeded", data)
			}
		}
	}
	runtime.ReadMemStats(&after)
	perParse := (after.TotalAlloc - before.TotalAlloc) / (runs * uint64(len(hostile)))
	if perParse > 1024 {
		t.Fatalf("%d bytes allocated per hostile Parse, want well under the claimed counts", perParse)
	}
}

func TestParseAliasesInput(t *testing.T) {
	data := encode(&pgoutput.Insert{RelID: 1, New: pgoutput.Tuple{Columns: []pgoutput.TupleColumn{text("ab"), text("cd")}}})
	m, err := pgoutput.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	cols := m.(*pgoutput.Insert).New.Columns
	if cap(cols[0].Data) != 2 {
		t.Fatalf("cap(Data) = %d, want clipped to 2", cap(cols[0].Data))
	}
	_ = append(cols[0].Data, 'X') // must not overwrite the next column
	if string(cols[1].Data) != "cd" {
		t.Fatalf("append to one column overwrote the next: %q", cols[1].Data)
	}
	copy(data[len(data)-2:], "zz") // the contract: Data sees changes to the input
	if string(cols[1].Data) != "zz" {
		t.Fatalf("Data = %q, want it to alias the input", cols[1].Data)
	}
}

func TestParseTimestamps(t *testing.T) {
	for _, us := range []int64{0, 1, -1, 999_999, -1_000_001, 763_740_451_123_456, 1<<63 - 1, -1 << 63} {
		var e encoder
		e.u8('B')
		e.u64(0)
		e.u64(uint64(us))
		e.u32(0)
		m, err := pgoutput.Parse(e.b)
		if err != nil {
			t.Fatal(err)
		}
		got := m.(*pgoutput.Begin).CommitTime
		if got.Location() != time.UTC {
			t.Fatalf("%d: location %v, want UTC", us, got.Location())
		}
		if us > -1e12 && us < 1e12 { // within time.Duration range
			if want := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(us) * time.Microsecond); !got.Equal(want) {
				t.Fatalf("%d µs = %v, want %v", us, got, want)
			}
		}
		if !bytes.Equal(encode(m), e.b) {
			t.Fatalf("%d µs: %v does not encode back", us, got)
		}
	}
}

func TestKeyColumns(t *testing.T) {
	for _, fx := range fixtures {
		if r, ok := fx.msg.(*pgoutput.Relation); ok && r.Name == "accounts" {
			if got := r.KeyColumns(); !reflect.DeepEqual(got, []int{0, 1}) {
				t.Fatalf("KeyColumns() = %v, want [0 1]", got)
			}
		}
	}
	if got := (&pgoutput.Relation{}).KeyColumns(); len(got) != 0 {
		t.Fatalf("KeyColumns() of no columns = %v", got)
	}
}

func TestMessageTypeString(t *testing.T) {
	for b, want := range map[byte]string{'I': "Insert", 'Y': "Type", 'S': "StreamStart", 'Z': "MessageType('Z')", 0: `MessageType('\x00')`} {
		if got := pgoutput.MessageType(b).String(); got != want {
			t.Errorf("MessageType(%q).String() = %q, want %q", b, got, want)
		}
	}
}
