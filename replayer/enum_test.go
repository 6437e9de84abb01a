package replayer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/internal/pgtest"
	"github.com/tenantwal/tenantwal/schemas"
)

func trOf(pairs ...string) map[string][]byte {
	tr := map[string][]byte{}
	for i := 0; i < len(pairs); i += 2 {
		tr[pairs[i]] = []byte(pairs[i+1])
	}
	return tr
}

func TestTranslateArray(t *testing.T) {
	tr := trOf("sad", "unhappy", "a b", "ab", `x"y`, `back\slash`, "NULL", "null", "ok", "so, so", "e", "")
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{`{}`, `{}`, true},
		{`{sad}`, `{unhappy}`, true},
		{`{sad,ok,happy}`, `{unhappy,"so, so",happy}`, true},
		{`{"sad",NULL,sad}`, `{unhappy,NULL,unhappy}`, true},                // quoted without need, NULL kept
		{`{"NULL",NULL}`, `{"null",NULL}`, true},                            // the label NULL, and a NULL
		{`{"a b","x\"y"}`, `{ab,"back\\slash"}`, true},                      // quoting and backslashes
		{`{{sad,NULL},{happy,"a b"}}`, `{{unhappy,NULL},{happy,ab}}`, true}, // two dimensions
		{`{{{sad}},{{ok}}}`, `{{{unhappy}},{{"so, so"}}}`, true},
		{`[0:1]={sad,happy}`, `[0:1]={unhappy,happy}`, true},        // lower bounds kept
		{`[2:2][1:2]={{sad,e}}`, `[2:2][1:2]={{unhappy,""}}`, true}, // to an empty string
		{`{happy,glad}`, `{happy,glad}`, true},                      // nothing to rename
		{`{sadder,"sad "}`, `{sadder,"sad "}`, true},
		{``, ``, false},
		{`sad`, `sad`, false},
		{`{sad`, `{sad`, false},
		{`{sad}}`, `{sad}}`, false},
		{`{sad,}`, `{sad,}`, false},
		{`{,sad}`, `{,sad}`, false},
		{`{"sad}`, `{"sad}`, false},
		{`{"sad\"}`, `{"sad\"}`, false},
		{`{sad"x"}`, `{sad"x"}`, false},
		{`{sad}{ok}`, `{sad}{ok}`, false},
		{`[0:1]sad`, `[0:1]sad`, false},
		{`{{sad}ok}`, `{{sad}ok}`, false},
	} {
		out, changed, ok := translateArray([]byte(tc.in), tr)
		if ok != tc.ok || string(out) != tc.want || changed != (tc.in != tc.want) {
			t.Errorf("translateArray(%s) = %s, changed %v, ok %v; want %s, ok %v", tc.in, out, changed, ok, tc.want, tc.ok)
		}
	}
}

// TestTranslateArrayMatchesPostgres renames the labels of an enum in
// PostgreSQL and checks that translating the arrays' text from before the
// renames gives PostgreSQL's text after them.
func TestTranslateArrayMatchesPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	renames := [][2]string{
		{"sad", `n"u\ll`}, {"a b", "null"}, {`x"y`, "xy"}, {`back\slash`, "{}"}, {"NULL", "plain2"},
		{"{br}", " lead"}, {"c,d", "tab\tin"}, {"ünï", "ü,ï"}, {"q", "NULL"},
	}
	var labels []string
	tr := map[string][]byte{}
	for _, r := range renames {
		labels = append(labels, quoteLiteral(r[0]))
		tr[r[0]] = []byte(r[1])
	}
	labels = append(labels, "'plain'")
	_, err = conn.Exec(ctx, `CREATE TYPE e AS ENUM (`+strings.Join(labels, ", ")+`);
		CREATE TABLE t (id int PRIMARY KEY, a e[]);
		INSERT INTO t VALUES
			(1, ARRAY['sad', 'a b', NULL, 'x"y']::e[]),
			(2, ARRAY[['sad', NULL], ['NULL', 'plain']]::e[]),
			(3, '[0:1]={"back\\slash","{br}"}'),
			(4, '{}'),
			(5, ARRAY['c,d', 'ünï', 'q', 'plain']::e[]),
			(6, ARRAY[[['sad'], ['q']], [['NULL'], [NULL]]]::e[]),
			(7, '[-3:-2][5:5]={{"c,d"},{plain}}')`)
	if err != nil {
		t.Fatal(err)
	}
	texts := func() []string {
		rows, _ := conn.Query(ctx, `SELECT a::text FROM t ORDER BY id`)
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := texts()
	for _, r := range renames {
		if _, err := conn.Exec(ctx, `ALTER TYPE e RENAME VALUE `+quoteLiteral(r[0])+` TO `+quoteLiteral(r[1])); err != nil {
			t.Fatal(err)
		}
	}
	after := texts()
	for i := range before {
		out, _, ok := translateArray([]byte(before[i]), tr)
		if !ok || string(out) != after[i] {
			t.Errorf("translateArray(%s) = %s, ok %v; PostgreSQL shows %s", before[i], out, ok, after[i])
		}
	}
}

// decodeArray is the tests' own reading of an array's text output: its
// shape (the text with every element replaced by "e", or "n" for NULL) and
// its non-NULL elements.
func decodeArray(s string) (shape string, elems []string, ok bool) {
	var b strings.Builder
	if strings.HasPrefix(s, "[") {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return "", nil, false
		}
		b.WriteString(s[:eq+1])
		s = s[eq+1:]
	}
	var value func() bool
	value = func() bool { // one element or a sub-array
		switch {
		case strings.HasPrefix(s, "{"):
			b.WriteByte('{')
			s = s[1:]
			if strings.HasPrefix(s, "}") {
				b.WriteByte('}')
				s = s[1:]
				return true
			}
			for {
				if !value() {
					return false
				}
				if s == "" {
					return false
				}
				c := s[0]
				s = s[1:]
				b.WriteByte(c)
				if c == '}' {
					return true
				}
				if c != ',' {
					return false
				}
			}
		case strings.HasPrefix(s, `"`):
			var el strings.Builder
			for i := 1; i < len(s); i++ {
				switch s[i] {
				case '\\':
					i++
					if i == len(s) {
						return false
					}
					el.WriteByte(s[i])
				case '"':
					elems = append(elems, el.String())
					b.WriteByte('e')
					s = s[i+1:]
					return true
				default:
					el.WriteByte(s[i])
				}
			}
			return false
		default:
			n := strings.IndexAny(s, `{}",`)
			if n <= 0 {
				return false
			}
			if s[:n] == "NULL" {
				b.WriteByte('n')
			} else {
				elems = append(elems, s[:n])
				b.WriteByte('e')
			}
			s = s[n:]
			return true
		}
	}
	if !strings.HasPrefix(s, "{") || !value() || s != "" {
		return "", nil, false
	}
	return b.String(), elems, true
}

func FuzzTranslateArray(f *testing.F) {
	for _, s := range []string{`{}`, `{sad,ok}`, `{"sad",NULL,"a b"}`, `{{sad,NULL},{"x\"y",ok}}`, `[0:1]={sad,happy}`,
		`{"back\\slash"}`, `{"NULL",NULL}`, `{sad,}`, `{"sad}`} {
		f.Add(s, "sad", "un happy")
	}
	f.Add(`{"a,b",NULL}`, "a,b", "NULL")
	f.Add(`{x}`, "x", "")
	f.Fuzz(func(t *testing.T, src, from, to string) {
		tr := trOf(from, to)
		out, changed, ok := translateArray([]byte(src), tr)
		shape, elems, dok := decodeArray(src)
		if ok != dok {
			t.Fatalf("translateArray(%q) ok %v, the tests' decoder %v", src, ok, dok)
		}
		if !ok {
			if string(out) != src || changed {
				t.Fatalf("translateArray(%q) changed invalid text to %q", src, out)
			}
			return
		}
		oshape, oelems, ook := decodeArray(string(out))
		if !ook || oshape != shape || len(oelems) != len(elems) {
			t.Fatalf("translateArray(%q) = %q: shape %q, want %q", src, out, oshape, shape)
		}
		for i, el := range elems {
			want := el
			if el == from {
				want = to
			}
			if oelems[i] != want {
				t.Fatalf("translateArray(%q) = %q: element %d is %q, want %q", src, out, i, oelems[i], want)
			}
		}
		if changed != slices.Contains(elems, from) || !changed && string(out) != src {
			t.Fatalf("translateArray(%q) = %q, changed %v", src, out, changed)
		}
	})
}

// TestRenameEnumsOnlyWhenNeeded checks that a mapper translates only for
// source versions whose labels the target renamed, and only their columns.
func TestRenameEnumsOnlyWhenNeeded(t *testing.T) {
	mood := schemas.TypeDef{Name: "app.mood", Kind: 'e', Labels: []string{"sad", "ok"}, LabelOIDs: []uint32{901, 902}}
	renamed := mood
	renamed.Labels = []string{"unhappy", "ok"}
	version := func(d schemas.TypeDef, typeName string) *schemas.TableSchema {
		ts := TableSchemaFor("app", "t",
			schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true},
			schemas.Column{Name: "m", TypeOID: 16400, TypeMod: -1, TypeName: typeName},
			schemas.Column{Name: "ms", TypeOID: 16401, TypeMod: -1, TypeName: typeName + "[]"},
			schemas.Column{Name: "note", TypeOID: 25, TypeMod: -1, TypeName: "text"})
		ts.Types = []schemas.TypeDef{d}
		ts.ComputeVersion()
		return ts
	}
	v1, v2 := version(mood, "app.mood"), version(renamed, "app.mood")
	f, err := newFold("x", v2, Target{LSN: 1})
	if err != nil {
		t.Fatal(err)
	}
	m := f.mapperFor(v2)
	if err := m.renameEnums(v2); err != nil || m.enums != nil {
		t.Fatalf("same version: enums %v, err %v", m.enums, err)
	}
	m = f.mapperFor(v1)
	if err := m.renameEnums(v2); err != nil || len(m.enums) != 2 || m.enums[0].col != 1 || m.enums[0].array || !m.enums[1].array {
		t.Fatalf("renamed: enums %+v, err %v", m.enums, err)
	}
	row := m.mapRow([]schemas.Value{Txt("1"), Txt("sad"), Txt(`{sad,ok,NULL}`), Txt("sad")})
	var got []string
	for _, v := range row {
		got = append(got, string(v.Data))
	}
	if want := []string{"1", "unhappy", "{unhappy,ok,NULL}", "sad"}; !slices.Equal(got, want) {
		t.Errorf("mapped row %q, want %q", got, want)
	}
	// The type renamed too (ALTER TYPE … RENAME): matched by label OIDs.
	feeling := renamed
	feeling.Name = "app.feeling"
	v3 := version(feeling, "app.feeling")
	f, _ = newFold("x", v3, Target{LSN: 1})
	m = f.mapperFor(v1)
	if err := m.renameEnums(v3); err != nil || len(m.enums) != 2 {
		t.Fatalf("type renamed: enums %+v, err %v", m.enums, err)
	}
	// The type renamed away (app.mood → app.mood_old, its label renamed
	// too) and a new type created under its name: the column's labels
	// follow their OIDs to app.mood_old, not the new app.mood.
	moved := renamed
	moved.Name = "app.mood_old"
	newMood := schemas.TypeDef{Name: "app.mood", Kind: 'e', Labels: []string{"sad", "ok"}, LabelOIDs: []uint32{950, 951}}
	v4 := version(moved, "app.mood_old")
	v4.Types = []schemas.TypeDef{newMood, moved}
	v4.ComputeVersion()
	f, _ = newFold("x", v4, Target{LSN: 1})
	m = f.mapperFor(v1)
	if err := m.renameEnums(v4); err != nil || len(m.enums) != 2 {
		t.Fatalf("type renamed away, new type under its name: enums %+v, err %v", m.enums, err)
	}
	if got := string(m.mapRow([]schemas.Value{Txt("1"), Txt("sad"), Txt(`{sad}`), Null})[1].Data); got != "unhappy" {
		t.Errorf("type renamed away, new type under its name: sad mapped to %q, want unhappy", got)
	}
	// Archives without OIDs: no translation.
	old1, old2 := mood, renamed
	old1.LabelOIDs, old2.LabelOIDs = nil, nil
	f, _ = newFold("x", version(old2, "app.mood"), Target{LSN: 1})
	m = f.mapperFor(version(old1, "app.mood"))
	if err := m.renameEnums(f.table); err != nil || m.enums != nil {
		t.Fatalf("no OIDs: enums %+v, err %v", m.enums, err)
	}
}

// BenchmarkMapRow maps a row of four columns, two of them enums: of the
// target version itself (no translation) and of a version whose labels
// the target renamed.
func BenchmarkMapRow(b *testing.B) {
	mood := schemas.TypeDef{Name: "app.mood", Kind: 'e', Labels: []string{"sad", "ok"}, LabelOIDs: []uint32{901, 902}}
	renamed := mood
	renamed.Labels = []string{"unhappy", "ok"}
	version := func(d schemas.TypeDef) *schemas.TableSchema {
		ts := TableSchemaFor("app", "t",
			schemas.Column{Name: "id", TypeOID: 23, TypeMod: -1, TypeName: "integer", Key: true},
			schemas.Column{Name: "m", TypeOID: 16400, TypeMod: -1, TypeName: "app.mood"},
			schemas.Column{Name: "ms", TypeOID: 16401, TypeMod: -1, TypeName: "app.mood[]"},
			schemas.Column{Name: "note", TypeOID: 25, TypeMod: -1, TypeName: "text"})
		ts.Types = []schemas.TypeDef{d}
		ts.ComputeVersion()
		return ts
	}
	target := version(renamed)
	row := []schemas.Value{Txt("12345"), Txt("sad"), Txt(`{sad,ok,NULL,ok}`), Txt("a note of some forty bytes or so, say")}
	for _, bc := range []struct {
		name string
		src  *schemas.TableSchema
	}{{"same version", target}, {"renamed", version(mood)}} {
		b.Run(bc.name, func(b *testing.B) {
			f, err := newFold("x", target, Target{LSN: 1})
			if err != nil {
				b.Fatal(err)
			}
			m := f.mapperFor(bc.src)
			if err := m.renameEnums(target); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = m.mapRow(row)
			}
		})
	}
}
