package replayer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tenantwal/tenantwal/schemas"
)

// Enum labels renamed between table versions (ALTER TYPE … RENAME VALUE).
//
// The archive holds enum values as their labels, as PostgreSQL printed them
// when the row was captured. A label keeps its pg_enum OID across a
// rename, and each table version records its enums' label OIDs
// (TypeDef.LabelOIDs), so rows of an older version are restored with the
// label the target version gives the same OID. Only mappers of versions
// that need it translate (mapper.enums); the others pay nothing.

// enumColumn translates one target column's renamed labels.
type enumColumn struct {
	col   int  // in the target version
	array bool // the values are arrays of labels
	tr    map[string][]byte
}

// enumOf returns the enum type among types whose labels values of type
// name are (or are arrays of), following domains; nil when there is none.
// It reports nested when name's values hold the enum in a way labels
// cannot be translated in (an array of a domain over an array).
func enumOf(types []schemas.TypeDef, name string) (td *schemas.TypeDef, array, nested bool) {
	for range 8 { // domains over domains, not cycles
		base, arr := strings.CutSuffix(name, "[]")
		i := slices.IndexFunc(types, func(d schemas.TypeDef) bool { return d.Name == base })
		if i < 0 {
			return nil, false, false
		}
		switch d := &types[i]; {
		case d.Kind == 'e':
			return d, array || arr, false
		case d.Kind != 'd':
			return nil, false, false
		case arr && (array || strings.HasSuffix(d.BaseType, "[]")):
			return nil, false, true
		}
		array = array || arr
		name = types[i].BaseType
	}
	return nil, false, false
}

// sameEnum reports whether a and b are the same enum type: a label OID in
// common (the type may have been renamed), or, where either does not
// record its OIDs (older archives), the same name. Two types that record
// OIDs and share none are different whatever their names (one renamed
// away and another created under its name).
func sameEnum(a, b *schemas.TypeDef) bool {
	if a.Name == b.Name && (!hasOIDs(a) || !hasOIDs(b)) {
		return true
	}
	for _, o := range a.LabelOIDs {
		if slices.Contains(b.LabelOIDs, o) {
			return true
		}
	}
	return false
}

// hasOIDs reports whether d records its labels' OIDs.
func hasOIDs(d *schemas.TypeDef) bool {
	return d.Kind == 'e' && len(d.LabelOIDs) == len(d.Labels) && len(d.Labels) > 0
}

// renames returns, for the labels of src that target (the same type) gives
// another label by OID, the target's label; nil when there are none or
// either version lacks OIDs.
func renames(src, target *schemas.TypeDef) map[string][]byte {
	if !hasOIDs(src) || !hasOIDs(target) {
		return nil
	}
	var tr map[string][]byte
	for i, o := range src.LabelOIDs {
		j := slices.Index(target.LabelOIDs, o)
		if j < 0 || target.Labels[j] == src.Labels[i] {
			continue
		}
		if tr == nil {
			tr = map[string][]byte{}
		}
		tr[src.Labels[i]] = []byte(target.Labels[j])
	}
	return tr
}

// renameEnums sets up the translation of renamed enum labels from m's
// source version to target. An enum whose labels were renamed but that a
// column uses in a way labels cannot be translated in (inside a composite
// or range type, or an array of a domain over an array) is an error: the
// restore would hold the old labels.
func (m *mapper) renameEnums(target *schemas.TableSchema) error {
	src := m.src
	renamed := map[*schemas.TypeDef]map[string][]byte{} // src enums with renamed labels
	for i := range src.Types {
		sd := &src.Types[i]
		if !hasOIDs(sd) {
			continue
		}
		for j := range target.Types {
			if td := &target.Types[j]; td.Kind == 'e' && sameEnum(sd, td) {
				if tr := renames(sd, td); tr != nil {
					renamed[sd] = tr
				}
				break
			}
		}
	}
	if len(renamed) == 0 {
		return nil
	}
	for i, j := range m.index {
		if j < 0 {
			continue
		}
		c := src.Columns[j]
		sd, array, nested := enumOf(src.Types, c.TypeName)
		if tr := renamed[sd]; tr != nil {
			m.enums = append(m.enums, enumColumn{col: i, array: array, tr: tr})
			continue
		}
		if sd == nil && (nested || opaque(src.Types, c.TypeName)) {
			for d, tr := range renamed {
				return fmt.Errorf("table %s column %q (type %s): labels of enum %s were renamed (%s) and the column may hold them inside its type, "+
					"where this restore cannot translate them (its rows archived before the rename would keep the old labels); "+
					"restores to points before the rename, or from a snapshot taken after it, are not affected",
					target.QualifiedName(), target.Columns[i].Name, c.TypeName, d.Name, describeRenames(tr))
			}
		}
	}
	return nil
}

// opaque reports whether values of type name may hold enum labels inside
// a structure: a composite, range or multirange type (or a domain over
// one, or an array of one).
func opaque(types []schemas.TypeDef, name string) bool {
	for range 8 {
		i := slices.IndexFunc(types, func(d schemas.TypeDef) bool { return d.Name == strings.TrimSuffix(name, "[]") })
		if i < 0 {
			return false
		}
		switch types[i].Kind {
		case 'c', 'r', 'm':
			return true
		case 'd':
			name = types[i].BaseType
		default:
			return false
		}
	}
	return false
}

func describeRenames(tr map[string][]byte) string {
	var out []string
	for from, to := range tr {
		out = append(out, fmt.Sprintf("%q to %q", from, to))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// translate replaces renamed labels in the values of the mapper's enum
// columns (vals in the target's column order). Values it changes get new
// bytes; the others are left as they are.
func (m *mapper) translate(vals []schemas.Value) {
	for _, ec := range m.enums {
		v := &vals[ec.col]
		if v.Kind != schemas.ValueText {
			continue
		}
		if !ec.array {
			if to, ok := ec.tr[string(v.Data)]; ok {
				v.Data = to // shared, never written to
			}
			continue
		}
		if out, changed, ok := translateArray(v.Data, ec.tr); ok && changed {
			v.Data = out
		}
	}
}

// translateArray returns the text output of a PostgreSQL array (src) with
// every element that tr maps replaced by its mapping, quoted as
// PostgreSQL's array output quotes it. Other elements, NULLs, braces,
// delimiters and a dimension decoration ("[0:1]={…}") are copied byte for
// byte. changed is false (and out is src) when no element was replaced;
// ok is false when src is not an array's text.
func translateArray(src []byte, tr map[string][]byte) (out []byte, changed, ok bool) {
	i := 0
	if len(src) > 0 && src[0] == '[' {
		eq := slices.Index(src, '=')
		if eq < 0 {
			return src, false, false
		}
		i = eq + 1
	}
	if i >= len(src) || src[i] != '{' {
		return src, false, false
	}
	var dst []byte // nil until the first replacement
	var scratch []byte
	depth := 0
	expectElem := false // after '{' or ','
	afterComma := false
	for i < len(src) {
		c := src[i]
		if dst != nil && (c == '{' || c == '}' || c == ',') {
			dst = append(dst, c)
		}
		switch {
		case c == '{':
			if depth > 0 && !expectElem {
				return src, false, false
			}
			depth++
			expectElem, afterComma = true, false
			i++
		case c == '}':
			if depth == 0 || afterComma {
				return src, false, false
			}
			depth--
			expectElem = false
			i++
			if depth == 0 && i != len(src) {
				return src, false, false
			}
		case c == ',':
			if depth == 0 || expectElem {
				return src, false, false
			}
			expectElem, afterComma = true, true
			i++
		case depth == 0 || !expectElem:
			return src, false, false
		default:
			start := i
			var val []byte
			var null bool
			if i, val, null, scratch = scanArrayElem(src, i, scratch); i < 0 {
				return src, false, false
			}
			expectElem, afterComma = false, false
			to, found := tr[string(val)]
			if null || !found {
				if dst != nil {
					dst = append(dst, src[start:i]...)
				}
				continue
			}
			if dst == nil {
				dst = make([]byte, 0, len(src)+16)
				dst = append(dst, src[:start]...)
			}
			dst = appendArrayElem(dst, to)
		}
	}
	if depth != 0 {
		return src, false, false
	}
	if dst == nil {
		return src, false, true
	}
	return dst, true, true
}

// scanArrayElem reads the element of src that starts at i: quoted (its
// value decoded into scratch) or bare (NULL, or its bytes). It returns
// the index after it, or -1 when the quotes are not closed.
func scanArrayElem(src []byte, i int, scratch []byte) (end int, val []byte, null bool, _ []byte) {
	if src[i] != '"' {
		start := i
		for i < len(src) && src[i] != ',' && src[i] != '}' && src[i] != '{' && src[i] != '"' {
			i++
		}
		return i, src[start:i], string(src[start:i]) == "NULL", scratch
	}
	scratch = scratch[:0]
	for i++; i < len(src) && src[i] != '"'; i++ {
		if src[i] == '\\' {
			i++
			if i == len(src) {
				return -1, nil, false, scratch
			}
		}
		scratch = append(scratch, src[i])
	}
	if i == len(src) {
		return -1, nil, false, scratch
	}
	return i + 1, scratch, false, scratch
}

// appendArrayElem appends s as array_out writes an element: in double
// quotes, with backslashes before quotes and backslashes, when it is
// empty, NULL in any case, or holds a brace, quote, backslash, the comma
// delimiter or white space.
func appendArrayElem(b, s []byte) []byte {
	quote := len(s) == 0 || strings.EqualFold(string(s), "NULL")
	for _, c := range s {
		switch c {
		case '{', '}', '"', '\\', ',', ' ', '\t', '\n', '\r', '\v', '\f':
			quote = true
		}
	}
	if !quote {
		return append(b, s...)
	}
	b = append(b, '"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"')
}
