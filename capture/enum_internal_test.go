package capture

import (
	"testing"

	"github.com/tenantwal/tenantwal/schemas"
)

// TestUnknownLabel checks which rows make capture reread an enum's labels:
// only those holding a label the version does not list, whatever the
// array's quoting, dimensions and bounds.
func TestUnknownLabel(t *testing.T) {
	ts := &schemas.TableSchema{
		Columns: []schemas.Column{{Name: "m", TypeName: "public.mood"}, {Name: "ms", TypeName: "public.mood[]"}, {Name: "d", TypeName: "public.dmoods"}},
		Types: []schemas.TypeDef{
			{Name: "public.dmoods", Kind: 'd', BaseType: "public.mood[]"},
			{Name: "public.mood", Kind: 'e', Labels: []string{"unhappy", "so, so", "NULL", `x"y`, `a\b`, "{}"}},
		},
	}
	cols := enumColumns(ts)
	if len(cols) != 3 || cols[0].array || !cols[1].array || !cols[2].array {
		t.Fatalf("enumColumns: %+v", cols)
	}
	txt := func(s string) schemas.Value { return schemas.Value{Kind: schemas.ValueText, Data: []byte(s)} }
	null := schemas.Value{Kind: schemas.ValueNull}
	for _, tc := range []struct {
		m, ms   string
		unknown bool
	}{
		{"unhappy", `{unhappy,"so, so"}`, false},
		{"so, so", `{{"NULL",NULL},{"x\"y","a\\b"}}`, false},
		{"NULL", `[0:1]={"{}",unhappy}`, false},
		{"unhappy", `{}`, false},
		{"sad", `{unhappy}`, true},
		{"unhappy", `{unhappy,sad}`, true},
		{"unhappy", `{"so, so ",unhappy}`, true},
		{"unhappy", `[2:2]={"so"}`, true},
	} {
		row := []schemas.Value{txt(tc.m), txt(tc.ms), null}
		if got := unknownLabel(cols, row); got != tc.unknown {
			t.Errorf("unknownLabel(%s, %s) = %v, want %v", tc.m, tc.ms, got, tc.unknown)
		}
		// The same array in the domain column.
		row = []schemas.Value{txt("unhappy"), null, txt(tc.ms)}
		if got := unknownLabel(cols, row); got != (tc.unknown && tc.m == "unhappy") {
			t.Errorf("unknownLabel of domain %s = %v", tc.ms, got)
		}
	}
}
