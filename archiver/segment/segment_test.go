package segment_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/schemas"
)

// row is one written row.
type row struct {
	m    segment.Meta
	vals []schemas.Value
}

func txt(s string) schemas.Value { return schemas.Value{Kind: schemas.ValueText, Data: []byte(s)} }

var (
	null      = schemas.Value{Kind: schemas.ValueNull}
	unchanged = schemas.Value{Kind: schemas.ValueUnchanged}
)

// wideTable has a column of every storage kind and several text-like types.
func wideTable() *schemas.TableSchema {
	ts := &schemas.TableSchema{
		RelID: 16385, Schema: "public", Name: "orders", ReplicaIdentity: 'd',
		Columns: []schemas.Column{
			{Name: "id", TypeOID: 20, TypeMod: -1, TypeName: "bigint", Key: true, NotNull: true},
			{Name: "tenant_id", TypeOID: 23, TypeMod: -1, TypeName: "integer", NotNull: true},
			{Name: "qty", TypeOID: 21, TypeMod: -1, TypeName: "smallint"},
			{Name: "paid", TypeOID: 16, TypeMod: -1, TypeName: "boolean"},
			{Name: "amount", TypeOID: 1700, TypeMod: 655366, TypeName: "numeric(10,2)"},
			{Name: "note", TypeOID: 25, TypeMod: -1, TypeName: "text"},
			{Name: "doc", TypeOID: 3802, TypeMod: -1, TypeName: "jsonb"},
			{Name: "created_at", TypeOID: 1184, TypeMod: -1, TypeName: "timestamp with time zone"},
			{Name: "blob", TypeOID: 17, TypeMod: -1, TypeName: "bytea"},
			{Name: "tags", TypeOID: 1009, TypeMod: -1, TypeName: "text[]"},
			{Name: "mood", TypeOID: 16400, TypeMod: -1, TypeName: "public.mood"},
			{Name: "owner_oid", TypeOID: 26, TypeMod: -1, TypeName: "oid"},
			{Name: "ratio", TypeOID: 701, TypeMod: -1, TypeName: "double precision"},
		},
		PrimaryKey:   []string{"id"},
		TenantColumn: "tenant_id",
		Types:        []schemas.TypeDef{{Name: "public.mood", Kind: 'e', Labels: []string{"sad", "ok", "happy"}}},
	}
	ts.ComputeVersion()
	return ts
}

var (
	texts = []string{"", "plain", "O'Brien \"quoted\" \\ back\\slash", "tab\tnew\nline\r", "ünïcödé — 日本語 🎉",
		"\x01\x02\x7f control but no NUL", "NULL", "   "}
	ts0 = time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)
)

// wideRows returns n rows covering every op, NULLs, unchanged values and
// edge-case texts.
func wideRows(n int) []row {
	rng := rand.New(rand.NewPCG(1, 2))
	ops := []schemas.Op{schemas.OpInsert, schemas.OpUpdate, schemas.OpDelete, schemas.OpTruncate}
	rows := make([]row, 0, n)
	for i := 0; i < n; i++ {
		op := ops[i%len(ops)]
		m := segment.Meta{
			LSN: schemas.LSN(0x16_B374D848 + uint64(i/3)*0x100), Seq: uint32(i % 3), Op: op,
			CommitTime: ts0.Add(time.Duration(i) * time.Second), XID: uint32(700 + i/3),
		}
		v := make([]schemas.Value, 13)
		for j := range v {
			v[j] = null
		}
		id := fmt.Sprint(int64(i) - 5)
		switch op {
		case schemas.OpTruncate:
			// all NULL
		case schemas.OpDelete:
			v[0] = txt(id)
		default:
			v[0] = txt(id)
			v[1] = txt([]string{"1", "-2147483648", "2147483647", "42"}[i%4])
			v[2] = pick(rng, txt([]string{"0", "-32768", "32767", "-1"}[i%4]))
			v[3] = pick(rng, txt([]string{"t", "f"}[i%2]))
			v[4] = pick(rng, txt([]string{"0.00", "-12345678.90", "NaN", "1e-3"}[i%4]))
			v[5] = pick(rng, txt(texts[i%len(texts)]))
			v[6] = pick(rng, txt(fmt.Sprintf(`{"a": %d, "s": "ü\"x", "n": null}`, i)))
			v[7] = pick(rng, txt([]string{"2026-11-23 10:00:00.123456+00", "infinity", "0044-03-15 00:00:00+00 BC"}[i%3]))
			v[8] = pick(rng, txt([]string{`\x`, `\x00ff10`, `\xdeadbeef`}[i%3]))
			v[9] = pick(rng, txt([]string{`{}`, `{a,"b c",NULL}`, `{"{\"x\"}"}`}[i%3]))
			v[10] = pick(rng, txt([]string{"sad", "ok", "happy"}[i%3]))
			v[11] = pick(rng, txt([]string{"0", "4294967295", "16384"}[i%3]))
			v[12] = pick(rng, txt([]string{"1.5", "-0", "Infinity", "0.30000000000000004", "-1.7976931348623157e+308"}[i%5]))
			if op == schemas.OpUpdate && i%8 == 1 {
				v[6], v[8] = unchanged, unchanged
			}
			if op == schemas.OpUpdate && i%8 == 5 {
				v[12] = unchanged
			}
		}
		rows = append(rows, row{m, v})
	}
	return rows
}

// pick returns v, or NULL one time in five.
func pick(rng *rand.Rand, v schemas.Value) schemas.Value {
	if rng.IntN(5) == 0 {
		return null
	}
	return v
}

func writeFile(t testing.TB, ts *schemas.TableSchema, opts segment.Options, rows []row) ([]byte, segment.Stats) {
	t.Helper()
	var buf bytes.Buffer
	w, err := segment.NewWriter(&buf, ts, opts)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for i, r := range rows {
		if err := w.Write(r.m, r.vals); err != nil {
			t.Fatalf("Write row %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes(), w.Stats()
}

// readFile reads every row, deep-copying the values.
func readFile(t testing.TB, b []byte) (*schemas.TableSchema, []row) {
	t.Helper()
	r, err := segment.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	var rows []row
	for {
		m, vals, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d rows: %v", len(rows), err)
		}
		cp := make([]schemas.Value, len(vals))
		for i, v := range vals {
			cp[i] = schemas.Value{Kind: v.Kind, Data: bytes.Clone(v.Data)}
		}
		rows = append(rows, row{m, cp})
	}
	if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after EOF: %v, want io.EOF again", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return r.Table(), rows
}

func sameRows(t testing.TB, got, want []row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d rows, wrote %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		wm := w.m
		wm.CommitTime = wm.CommitTime.Truncate(time.Microsecond).UTC()
		if g.m.LSN != wm.LSN || g.m.Seq != wm.Seq || g.m.Op != wm.Op || g.m.XID != wm.XID ||
			!g.m.CommitTime.Equal(wm.CommitTime) || g.m.CommitTime.Location() != time.UTC {
			t.Fatalf("row %d meta = %+v, want %+v", i, g.m, wm)
		}
		if len(g.vals) != len(w.vals) {
			t.Fatalf("row %d has %d values, want %d", i, len(g.vals), len(w.vals))
		}
		for j := range w.vals {
			gv, wv := g.vals[j], w.vals[j]
			if gv.Kind != wv.Kind || !bytes.Equal(gv.Data, wv.Data) {
				t.Fatalf("row %d col %d = %c %q, want %c %q", i, j, gv.Kind, trunc(gv.Data), wv.Kind, trunc(wv.Data))
			}
			if wv.Kind != schemas.ValueText && gv.Data != nil {
				t.Fatalf("row %d col %d: kind %c has data %q", i, j, gv.Kind, gv.Data)
			}
			if wv.Kind == schemas.ValueText && gv.Data == nil {
				t.Fatalf("row %d col %d: text value with nil Data", i, j)
			}
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	ts := wideTable()
	all := wideRows(1000)
	for _, tc := range []struct {
		name string
		opts segment.Options
		rows int
	}{
		{"default", segment.Options{}, 1000},
		{"zstd-small-groups", segment.Options{Compression: "zstd", RowGroupRows: 7}, 200},
		{"snappy", segment.Options{Compression: "snappy", RowGroupRows: 100}, 1000},
		{"none", segment.Options{Compression: "none", RowGroupRows: 999}, 1000},
		{"one-row-groups", segment.Options{RowGroupRows: 1}, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := all[:tc.rows]
			b, _ := writeFile(t, ts, tc.opts, rows)
			gotTS, got := readFile(t, b)
			if gotTS.Version != ts.Version || gotTS.QualifiedName() != ts.QualifiedName() ||
				len(gotTS.Columns) != len(ts.Columns) || gotTS.Types[0].Labels[2] != "happy" {
				t.Fatalf("Table() = %+v, want %+v", gotTS, ts)
			}
			if v := gotTS.ComputeVersion(); v != ts.Version {
				t.Fatalf("stored schema hashes to %s, want %s", v, ts.Version)
			}
			sameRows(t, got, rows)
			if tc.opts.RowGroupRows > 0 {
				f := openRaw(t, b)
				want := (len(rows) + tc.opts.RowGroupRows - 1) / tc.opts.RowGroupRows
				if f.NumRowGroups() != want {
					t.Fatalf("%d row groups, want %d", f.NumRowGroups(), want)
				}
			}
		})
	}
}

func TestEmptyStringIsNotNull(t *testing.T) {
	ts := &schemas.TableSchema{Schema: "s", Name: "t", Columns: []schemas.Column{
		{Name: "a", TypeOID: 25}, {Name: "b", TypeOID: 17}, {Name: "c", TypeOID: 1043},
	}}
	rows := []row{
		{segment.Meta{LSN: 1, Op: 'I'}, []schemas.Value{txt(""), txt(`\x`), null}},
		{segment.Meta{LSN: 2, Op: 'I'}, []schemas.Value{null, null, txt("")}},
		{segment.Meta{LSN: 3, Op: 'U'}, []schemas.Value{unchanged, txt(`\x`), unchanged}},
	}
	b, _ := writeFile(t, ts, segment.Options{}, rows)
	_, got := readFile(t, b)
	sameRows(t, got, rows)
}

func TestLargeValue(t *testing.T) {
	ts := &schemas.TableSchema{Schema: "s", Name: "big", Columns: []schemas.Column{
		{Name: "id", TypeOID: 20, Key: true}, {Name: "body", TypeOID: 25}, {Name: "raw", TypeOID: 17},
	}}
	rng := rand.New(rand.NewPCG(3, 4))
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(' ' + rng.IntN(95)) // printable, incompressible-ish
	}
	raw := make([]byte, 1<<19)
	for i := range raw {
		raw[i] = byte(rng.Uint32())
	}
	hexText := append([]byte(`\x`), fmt.Appendf(nil, "%x", raw)...)
	var rows []row
	for i := 0; i < 5; i++ {
		rows = append(rows, row{segment.Meta{LSN: schemas.LSN(10 + i), Op: 'I'},
			[]schemas.Value{txt(fmt.Sprint(i)), {Kind: 't', Data: big}, {Kind: 't', Data: hexText}}})
		rows = append(rows, row{segment.Meta{LSN: schemas.LSN(10 + i), Seq: 1, Op: 'I'},
			[]schemas.Value{txt("-" + fmt.Sprint(i+1)), txt("small"), txt(`\x01`)}})
	}
	b, _ := writeFile(t, ts, segment.Options{RowGroupRows: 3}, rows)
	_, got := readFile(t, b)
	sameRows(t, got, rows)
}

func TestEmptyFile(t *testing.T) {
	ts := wideTable()
	b, st := writeFile(t, ts, segment.Options{}, nil)
	if st != (segment.Stats{}) {
		t.Fatalf("Stats of an empty file = %+v, want zero", st)
	}
	gotTS, rows := readFile(t, b)
	if len(rows) != 0 || gotTS.Name != "orders" {
		t.Fatalf("empty file read %d rows, table %q", len(rows), gotTS.Name)
	}
}

func TestStats(t *testing.T) {
	ts := &schemas.TableSchema{Schema: "s", Name: "t", Columns: []schemas.Column{{Name: "a", TypeOID: 23}}}
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", 3600)) // sub-µs part is dropped
	rows := []row{
		{segment.Meta{LSN: 0x200, Seq: 1, Op: 'I', CommitTime: ts0}, []schemas.Value{txt("1")}},
		{segment.Meta{LSN: 0x100, Seq: 7, Op: 'U', CommitTime: t1}, []schemas.Value{txt("2")}},
		{segment.Meta{LSN: 0x200, Seq: 0, Op: 'D', CommitTime: ts0.Add(time.Hour)}, []schemas.Value{txt("3")}},
		{segment.Meta{LSN: 0x300, Seq: 0, Op: 'T', CommitTime: ts0}, []schemas.Value{null}},
		{segment.Meta{LSN: 0x300, Seq: 2, Op: 'I', CommitTime: ts0}, []schemas.Value{null}},
	}
	b, st := writeFile(t, ts, segment.Options{RowGroupRows: 2}, rows)
	want := segment.Stats{
		Rows:    5,
		First:   schemas.Pos{LSN: 0x100, Seq: 7},
		Last:    schemas.Pos{LSN: 0x300, Seq: 2},
		MinTime: t1.Truncate(time.Microsecond).UTC(),
		MaxTime: ts0.Add(time.Hour),
	}
	if st.Rows != want.Rows || st.First != want.First || st.Last != want.Last ||
		!st.MinTime.Equal(want.MinTime) || !st.MaxTime.Equal(want.MaxTime) || st.MinTime.Location() != time.UTC {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
	_, got := readFile(t, b)
	sameRows(t, got, rows)
}

func TestValueCountMismatch(t *testing.T) {
	w, err := segment.NewWriter(io.Discard, wideTable(), segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 12, 14} {
		if err := w.Write(segment.Meta{Op: 'I'}, make([]schemas.Value, n)); err == nil || !strings.Contains(err.Error(), "13 columns") {
			t.Fatalf("Write with %d values: err = %v, want a count mismatch", n, err)
		}
	}
}

// TestRejectsNonCanonical checks that typed columns refuse text that would
// not read back identically, name the column, and keep the writer usable.
func TestRejectsNonCanonical(t *testing.T) {
	ts := &schemas.TableSchema{Schema: "s", Name: "t", Columns: []schemas.Column{
		{Name: "n", TypeOID: 25}, {Name: "i2", TypeOID: 21}, {Name: "i4", TypeOID: 23}, {Name: "i8", TypeOID: 20},
		{Name: "o", TypeOID: 26}, {Name: "b", TypeOID: 16}, {Name: "raw", TypeOID: 17},
	}}
	good := []schemas.Value{txt("x"), txt("1"), txt("2"), txt("3"), txt("4"), txt("t"), txt(`\xab`)}
	bad := map[int][]string{
		1: {"007", "+1", "-0", " 1", "1 ", "32768", "-32769", "", "1.0", "0x1", "-"},
		2: {"2147483648", "-2147483649", "00", "1e3"},
		3: {"9223372036854775808", "-9223372036854775809", "99999999999999999999", "--1"},
		4: {"-1", "4294967296"},
		5: {"true", "T", "1", "", "tt"},
		6: {`\xAB`, `\xa`, `xab`, `\x0g`, `abc`, ``, `\\x00`},
	}
	var buf bytes.Buffer
	w, err := segment.NewWriter(&buf, ts, segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []row
	lsn := schemas.LSN(1)
	write := func(vals []schemas.Value) error {
		lsn++
		err := w.Write(segment.Meta{LSN: lsn, Op: 'I'}, vals)
		if err == nil {
			want = append(want, row{segment.Meta{LSN: lsn, Op: 'I', CommitTime: time.Time{}}, vals})
		}
		return err
	}
	if err := write(good); err != nil {
		t.Fatal(err)
	}
	for col, texts := range bad {
		for _, s := range texts {
			vals := append([]schemas.Value(nil), good...)
			vals[col] = txt(s)
			err := write(vals)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("column %q", ts.Columns[col].Name)) {
				t.Fatalf("column %s value %q: err = %v, want an error naming the column", ts.Columns[col].Name, s, err)
			}
		}
	}
	if err := write([]schemas.Value{txt("x"), txt("-32768"), txt("-2147483648"), txt("-9223372036854775808"),
		txt("4294967295"), txt("f"), txt(`\x`)}); err != nil {
		t.Fatal(err)
	}
	if err := write([]schemas.Value{null, {Kind: 'z'}, null, null, null, null, null}); err == nil {
		t.Fatal("unknown value kind accepted")
	}
	if err := w.Write(segment.Meta{Op: 'Z'}, good); err == nil {
		t.Fatal("unknown op accepted")
	}
	if err := write(good); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(segment.Meta{Op: 'I'}, good); !errors.Is(err, segment.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if st := w.Stats(); st.Rows != 3 {
		t.Fatalf("Stats.Rows = %d, want 3 (rejected rows do not count)", st.Rows)
	}
	_, got := readFile(t, buf.Bytes())
	sameRows(t, got, want)
}

func TestReservedColumnName(t *testing.T) {
	for _, name := range []string{"_tw_lsn", "_tw_other", "_tw_"} {
		ts := &schemas.TableSchema{Schema: "s", Name: "t", Columns: []schemas.Column{{Name: "a", TypeOID: 25}, {Name: name, TypeOID: 25}}}
		_, err := segment.NewWriter(io.Discard, ts, segment.Options{})
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "reserved") {
			t.Fatalf("column %q: err = %v, want a reserved-name error", name, err)
		}
	}
	ts := &schemas.TableSchema{Schema: "s", Name: "t", Columns: []schemas.Column{{Name: "tw_ok", TypeOID: 25}, {Name: "_TW_x", TypeOID: 25}}}
	if _, err := segment.NewWriter(io.Discard, ts, segment.Options{}); err != nil {
		t.Fatalf("non-reserved names refused: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := segment.NewWriter(io.Discard, wideTable(), segment.Options{Compression: "lz5"}); err == nil {
		t.Fatal("unknown compression accepted")
	}
	if err := (segment.Options{RowGroupRows: -1}).Validate(); err == nil {
		t.Fatal("negative RowGroupRows accepted")
	}
}

// TestWriteCopies checks that Write does not keep the caller's buffers.
func TestWriteCopies(t *testing.T) {
	ts := &schemas.TableSchema{Schema: "s", Name: "t", Columns: []schemas.Column{{Name: "a", TypeOID: 25}, {Name: "b", TypeOID: 17}}}
	var buf bytes.Buffer
	w, err := segment.NewWriter(&buf, ts, segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := []byte("hello"), []byte(`\x0102`)
	vals := []schemas.Value{{Kind: 't', Data: a}, {Kind: 't', Data: b}}
	if err := w.Write(segment.Meta{LSN: 1, Op: 'I'}, vals); err != nil {
		t.Fatal(err)
	}
	copy(a, "HELLO")
	copy(b, `\xffff`)
	vals[0] = null
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, got := readFile(t, buf.Bytes())
	sameRows(t, got, []row{{segment.Meta{LSN: 1, Op: 'I'}, []schemas.Value{txt("hello"), txt(`\x0102`)}}})
}

type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestCloseLeavesWriterOpen(t *testing.T) {
	var c closeRecorder
	w, err := segment.NewWriter(&c, wideTable(), segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c.closed {
		t.Fatal("Close closed the caller's io.Writer")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n < len(p) {
		return 0, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestSinkErrorIsReported(t *testing.T) {
	w, err := segment.NewWriter(&failWriter{n: 100}, wideTable(), segment.Options{RowGroupRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for _, r := range wideRows(100) {
		if werr = w.Write(r.m, r.vals); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = w.Close()
	}
	if werr == nil || !strings.Contains(werr.Error(), "disk full") {
		t.Fatalf("err = %v, want the sink's error", werr)
	}
}

// TestCorrupt checks that truncated or damaged files give errors, not
// panics.
func TestCorrupt(t *testing.T) {
	b, _ := writeFile(t, wideTable(), segment.Options{RowGroupRows: 50}, wideRows(300))
	readAll := func(b []byte) (err error) {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("panic: %v", p)
			}
		}()
		r, err := segment.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return err
		}
		defer r.Close()
		for {
			if _, _, err := r.Next(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	for _, n := range []int{0, 3, 4, 8, len(b) / 2, len(b) - 9, len(b) - 8, len(b) - 1} {
		err := readAll(b[:n])
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
		if !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v does not wrap ErrCorrupt", n, err)
		}
	}
	// Footer damage must be detected; page damage must at least not panic.
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 300; i++ {
		c := bytes.Clone(b)
		for k := 0; k < 1+rng.IntN(4); k++ {
			c[rng.IntN(len(c))] ^= byte(1 + rng.IntN(255))
		}
		_ = readAll(c)
	}
	if err := readAll([]byte("not a parquet file at all, just some text....")); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("garbage: %v", err)
	}
}

// TestForeignParquet checks that a Parquet file without tenantwal metadata
// is refused.
func TestForeignParquet(t *testing.T) {
	n, err := schema.NewPrimitiveNode("x", parquet.Repetitions.Required, parquet.Types.Int64, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	g, err := schema.NewGroupNode("schema", parquet.Repetitions.Required, schema.FieldList{n}, -1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fw, err := file.NewParquetWriterWithError(&buf, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := segment.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len())); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("foreign file: err = %v, want ErrCorrupt", err)
	}
}

func openRaw(t testing.TB, b []byte) *file.Reader {
	t.Helper()
	f, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestParquetSchema checks the file as a generic Parquet reader sees it:
// column names, types and the key-value metadata. (No independent Parquet
// implementation is available here, so this uses arrow-go's low-level
// reader rather than this package's.)
func TestParquetSchema(t *testing.T) {
	ts := wideTable()
	b, _ := writeFile(t, ts, segment.Options{}, wideRows(10))
	f := openRaw(t, b)
	sc := f.MetaData().Schema
	want := []struct {
		name string
		phys parquet.Type
		lt   string
	}{
		{"_tw_lsn", parquet.Types.Int64, "Int(bitWidth=64, isSigned=false)"},
		{"_tw_seq", parquet.Types.Int32, "Int(bitWidth=32, isSigned=false)"},
		{"_tw_op", parquet.Types.ByteArray, "String"},
		{"_tw_commit_ts", parquet.Types.Int64, "Timestamp(isAdjustedToUTC=true, timeUnit=microseconds, is_from_converted_type=false, force_set_converted_type=false)"},
		{"_tw_xid", parquet.Types.Int64, "None"},
		{"_tw_unchanged", parquet.Types.ByteArray, "String"},
		{"id", parquet.Types.Int64, "None"},
		{"tenant_id", parquet.Types.Int32, "Int(bitWidth=32, isSigned=true)"},
		{"qty", parquet.Types.Int32, "Int(bitWidth=16, isSigned=true)"},
		{"paid", parquet.Types.Boolean, "None"},
		{"amount", parquet.Types.ByteArray, "String"},
		{"note", parquet.Types.ByteArray, "String"},
		{"doc", parquet.Types.ByteArray, "String"},
		{"created_at", parquet.Types.ByteArray, "String"},
		{"blob", parquet.Types.ByteArray, "None"},
		{"tags", parquet.Types.ByteArray, "String"},
		{"mood", parquet.Types.ByteArray, "String"},
		{"owner_oid", parquet.Types.Int64, "None"},
		{"ratio", parquet.Types.ByteArray, "String"},
	}
	if sc.NumColumns() != len(want) {
		t.Fatalf("%d columns, want %d", sc.NumColumns(), len(want))
	}
	for i, w := range want {
		c := sc.Column(i)
		if c.Name() != w.name || c.PhysicalType() != w.phys || c.LogicalType().String() != w.lt {
			t.Errorf("column %d = %s %s %s, want %s %s %s", i, c.Name(), c.PhysicalType(), c.LogicalType(), w.name, w.phys, w.lt)
		}
	}
	kv := f.MetaData().KeyValueMetadata()
	if v := kv.FindValue("tenantwal.format"); v == nil || *v != "1" {
		t.Errorf("tenantwal.format = %v", v)
	}
	if v := kv.FindValue("tenantwal.table"); v == nil || !strings.Contains(*v, `"name":"orders"`) {
		t.Errorf("tenantwal.table = %v", v)
	}
	if f.NumRows() != 10 {
		t.Errorf("NumRows = %d", f.NumRows())
	}
}

// TestEncodings checks the encodings the writer picks per column:
// DELTA_BINARY_PACKED for integers, a dictionary for byte array columns
// with few distinct values, DELTA_LENGTH_BYTE_ARRAY for the others.
func TestEncodings(t *testing.T) {
	ts := &schemas.TableSchema{Schema: "s", Name: "t", Columns: []schemas.Column{
		{Name: "id", TypeOID: 20}, {Name: "n", TypeOID: 23}, {Name: "status", TypeOID: 25},
		{Name: "email", TypeOID: 25}, {Name: "blob", TypeOID: 17}, {Name: "kind", TypeOID: 17},
	}}
	var rows []row
	for i := range 1000 {
		rows = append(rows, row{segment.Meta{LSN: 100, Seq: uint32(i), Op: 'I', CommitTime: ts0, XID: 7}, []schemas.Value{
			txt(fmt.Sprint(i + 1)), txt(fmt.Sprint(i % 3)),
			txt([]string{"new", "paid", "shipped"}[i%3]), txt(fmt.Sprintf("user%d@example.com", i)),
			txt(fmt.Sprintf(`\x%08x`, i*7919)), txt([]string{`\x00`, `\xff`}[i%2]),
		}})
	}
	b, _ := writeFile(t, ts, segment.Options{}, rows)
	_, got := readFile(t, b)
	sameRows(t, got, rows)
	want := map[string]parquet.Encoding{
		"_tw_lsn": parquet.Encodings.DeltaBinaryPacked, "_tw_seq": parquet.Encodings.DeltaBinaryPacked,
		"_tw_op": parquet.Encodings.RLEDict, "_tw_commit_ts": parquet.Encodings.DeltaBinaryPacked,
		"_tw_xid": parquet.Encodings.DeltaBinaryPacked, "_tw_unchanged": parquet.Encodings.RLEDict,
		"id": parquet.Encodings.DeltaBinaryPacked, "n": parquet.Encodings.DeltaBinaryPacked,
		"status": parquet.Encodings.RLEDict, "email": parquet.Encodings.DeltaLengthByteArray,
		"blob": parquet.Encodings.DeltaLengthByteArray, "kind": parquet.Encodings.RLEDict,
	}
	md := openRaw(t, b).MetaData().RowGroup(0)
	for c := range md.NumColumns() {
		cc, err := md.ColumnChunk(c)
		if err != nil {
			t.Fatal(err)
		}
		name := cc.PathInSchema().String()
		if w := want[name]; !slices.Contains(cc.Encodings(), w) {
			t.Errorf("column %s: encodings %v, want %s", name, cc.Encodings(), w)
		}
		if d := cc.HasDictionaryPage(); d != (want[name] == parquet.Encodings.RLEDict) {
			t.Errorf("column %s: dictionary page %v", name, d)
		}
	}
}

func TestCompressionLevel(t *testing.T) {
	for _, o := range []segment.Options{{CompressionLevel: -1}, {CompressionLevel: 23}, {Compression: "snappy", CompressionLevel: 3}, {Compression: "none", CompressionLevel: 1}} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", o)
		}
	}
	rows := ordersRows(2000)
	sizes := map[int]int{}
	for _, level := range []int{1, 19} {
		b, _ := writeFile(t, ordersTable(), segment.Options{Compression: "zstd", CompressionLevel: level}, rows)
		_, got := readFile(t, b)
		sameRows(t, got, rows)
		sizes[level] = len(b)
	}
	if sizes[19] >= sizes[1] {
		t.Errorf("level 19 wrote %d bytes, level 1 %d: the level is not applied", sizes[19], sizes[1])
	}
}

// TestWritersShareBuffersSafely writes files of different rows from several
// goroutines, one after another in each (closed Writers hand their value
// buffers to the next ones): every file reads back exactly its own rows.
func TestWritersShareBuffersSafely(t *testing.T) {
	all := ordersRows(4000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5 {
				lo := (g*5 + i) * 200
				part := all[lo : lo+100+i*20]
				b, _ := writeFile(t, ordersTable(), segment.Options{}, part)
				_, got := readFile(t, b)
				sameRows(t, got, part)
			}
		})
	}
	wg.Wait()
}
