package schemas_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/schemas"
)

func TestLSN(t *testing.T) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := schemas.ParseLSN(s)
		if err != nil || l.String() != s {
			t.Fatalf("%s: %v %v", s, l, err)
		}
	}
	for _, s := range []string{"", "16", "x/1", "1/", "100000000/0"} {
		if _, err := schemas.ParseLSN(s); err == nil {
			t.Errorf("ParseLSN(%q): no error", s)
		}
	}
}

func TestEscapeNameInjective(t *testing.T) {
	ids := []string{"acme", "ACME", "a.b", "a%2Eb", "..", ".", "a/b", "a b", "*", ">", "ünï", "a%", "%41", "_-", "tenant\x00x"}
	seen := map[string]string{}
	for _, id := range ids {
		esc := schemas.EscapeName(id)
		if strings.ContainsAny(esc, "./ *>") {
			t.Errorf("%q escapes to %q with a separator", id, esc)
		}
		if prev, ok := seen[esc]; ok {
			t.Fatalf("%q and %q both escape to %q", prev, id, esc)
		}
		seen[esc] = id
		back, err := schemas.UnescapeName(esc)
		if err != nil || back != id {
			t.Fatalf("%q: round trip %q %v", id, back, err)
		}
	}
	for _, bad := range []string{"%41", "%4", "a.b", "%zz", "%2e"} {
		if _, err := schemas.UnescapeName(bad); err == nil {
			t.Errorf("UnescapeName(%q) accepted a string EscapeName never yields", bad)
		}
	}
}

func FuzzEscapeName(f *testing.F) {
	f.Add("a.b/c")
	f.Fuzz(func(t *testing.T, s string) {
		back, err := schemas.UnescapeName(schemas.EscapeName(s))
		if err != nil || back != s {
			t.Fatalf("%q: %q %v", s, back, err)
		}
	})
}

func TestTenantKeys(t *testing.T) {
	k := schemas.ManifestKey("a/b", 7)
	if k != "tenants/a%2Fb/manifest/00000000000000000007.json" {
		t.Fatal(k)
	}
	if n, err := schemas.ParseManifestSeq(k); err != nil || n != 7 {
		t.Fatal(n, err)
	}
	if id, err := schemas.TenantFromKey(k); err != nil || id != "a/b" {
		t.Fatal(id, err)
	}
	if !strings.HasPrefix(schemas.ObjectDir("x", "segments", 0x10), "tenants/x/segments/0000000000000010-") {
		t.Fatal(schemas.ObjectDir("x", "segments", 0x10))
	}
}

func sampleBatch() *schemas.Batch {
	ts := &schemas.TableSchema{RelID: 16384, Schema: "public", Name: "orders", Columns: []schemas.Column{{Name: "id", TypeOID: 20, TypeName: "bigint", Key: true}, {Name: "note", TypeOID: 25, TypeName: "text"}}}
	ts.ComputeVersion()
	return &schemas.Batch{
		Kind: schemas.KindChanges, Tenant: "a.b", CommitLSN: 0x1_0000_0010, EndLSN: 0x1_0000_0040,
		CommitTime: time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC), XID: 777, Chunk: 2, Final: true,
		Tables: []*schemas.TableSchema{ts},
		Events: []schemas.Event{
			{Seq: 1, Op: schemas.OpInsert, New: []schemas.Value{{Kind: schemas.ValueText, Data: []byte("1")}, {Kind: schemas.ValueText, Data: []byte{}}}},
			{Seq: 2, Op: schemas.OpUpdate, Old: []schemas.Value{{Kind: schemas.ValueText, Data: []byte("1")}, {Kind: schemas.ValueNull}}, New: []schemas.Value{{Kind: schemas.ValueText, Data: []byte("2")}, {Kind: schemas.ValueUnchanged}}},
			{Seq: 3, Op: schemas.OpDelete, Old: []schemas.Value{{Kind: schemas.ValueText, Data: []byte("2")}, {Kind: schemas.ValueNull}}},
			{Seq: 4, Op: schemas.OpTruncate, Flags: schemas.TruncateCascade},
		},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	b := sampleBatch()
	enc, err := b.AppendEncode(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := schemas.DecodeBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, b)
	}
	if got.Events[0].New[1].Data == nil || got.Events[2].Old[1].Data != nil {
		t.Fatal("empty text and NULL must stay distinct")
	}
	for i := range enc {
		if _, err := schemas.DecodeBatch(enc[:i]); !errors.Is(err, schemas.ErrBadBatch) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if b.MsgID(3) == (&schemas.Batch{Kind: schemas.KindChanges, Tenant: "a.b", CommitLSN: b.CommitLSN, Chunk: 3}).MsgID(3) {
		t.Fatal("chunks must have distinct message ids")
	}
}

func FuzzDecodeBatch(f *testing.F) {
	enc, _ := sampleBatch().AppendEncode(nil)
	f.Add(enc)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := schemas.DecodeBatch(data)
		if err != nil {
			return
		}
		again, err := b.AppendEncode(nil)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := schemas.DecodeBatch(again)
		if err != nil || !reflect.DeepEqual(b, b2) {
			t.Fatalf("re-decode differs: %v", err)
		}
	})
}

func TestLSNJSON(t *testing.T) {
	b, err := json.Marshal(struct{ L schemas.LSN }{0x16_B374D848})
	if err != nil || string(b) != `{"L":"16/B374D848"}` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	for _, in := range []string{`{"L":"16/B374D848"}`, `{"L":97500059720}`} {
		var v struct{ L schemas.LSN }
		if err := json.Unmarshal([]byte(in), &v); err != nil || v.L != 0x16_B374D848 {
			t.Errorf("unmarshal %s: %s, %v", in, v.L, err)
		}
	}
	var v struct{ L schemas.LSN }
	if err := json.Unmarshal([]byte(`{"L":"nope"}`), &v); err == nil {
		t.Error("bad LSN accepted")
	}
}
