package e2e_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/verify"
	"github.com/tenantwal/tenantwal/replayer"
	"github.com/tenantwal/tenantwal/schemas"
)

// testVerify checks an intact archive, then damages it (a flipped bit, a
// deleted object, an orphan) and checks that verify names each problem and
// that a restore needing a damaged object refuses to run. It destroys the
// archive: run it last.
func testVerify(t *testing.T, pool *pgxpool.Pool, store objstore.Store) {
	ctx := t.Context()
	rep, err := verify.Tenants(ctx, store, nil, verify.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// Orphans may exist: stopping the pipeline can interrupt a flush
	// between its objects and its manifest entry.
	if !rep.OK() || rep.Objects == 0 {
		t.Fatalf("intact archive: %+v", rep)
	}
	t.Logf("verify: %d tenants, %d entries, %d objects, %d rows: OK", rep.Tenants, rep.Entries, rep.Objects, rep.Rows)

	ten, err := catalog.LoadTenant(ctx, store, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var objs []schemas.ObjectRef
	for _, e := range ten.Entries {
		objs = append(objs, e.Objects...)
	}
	if len(objs) < 2 {
		t.Fatalf("tenant acme has %d objects, want at least 2", len(objs))
	}
	flipped, deleted := objs[0].Key, objs[len(objs)-1].Key
	b := readAll(t, store, flipped)
	b[len(b)/2] ^= 0x10
	if err := store.Put(ctx, flipped, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	orphan := schemas.ObjectDir("acme", "segments", 1) + "public.accounts-x.parquet"
	if err := store.Put(ctx, orphan, strings.NewReader("left by a crash")); err != nil {
		t.Fatal(err)
	}

	rep, err = verify.Tenants(ctx, store, []schemas.TenantID{"acme"}, verify.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, p := range rep.Problems {
		found[p.Object] = p.Reason
	}
	if r := found[flipped]; !strings.Contains(r, "SHA-256") {
		t.Errorf("flipped object %s: problem %q, want a checksum mismatch", flipped, r)
	}
	if r := found[deleted]; !strings.Contains(r, "not found") {
		t.Errorf("deleted object %s: problem %q, want not found", deleted, r)
	}
	if !slices.Contains(rep.Orphans, orphan) {
		t.Errorf("orphans %v, want %s among them", rep.Orphans, orphan)
	}
	quick, err := verify.Tenants(ctx, store, []schemas.TenantID{"acme"}, verify.Options{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(quick.Problems) != 1 || quick.Problems[0].Object != deleted {
		t.Errorf("quick verify: %+v, want only the missing object", quick.Problems)
	}

	plan, err := replayer.PlanRestore(ten, replayer.Target{LSN: ten.Range.ToLSN})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	_, err = replayer.Apply(ctx, store, conn.Conn(), plan, replayer.Options{Schema: "damaged"})
	if err == nil {
		t.Fatal("restore over a damaged archive succeeded")
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'damaged')").Scan(&exists); err != nil || exists {
		t.Errorf("a failed restore left schema damaged behind (%v)", err)
	}
	if !errors.Is(err, replayer.ErrCorrupt) && !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("restore over a damaged archive: %v, want a corruption or not-found error", err)
	}
}

func readAll(t *testing.T, store objstore.Store, key string) []byte {
	t.Helper()
	rc, err := store.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
