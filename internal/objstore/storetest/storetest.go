// Package storetest is the contract suite every objstore.Store
// implementation passes (after wal-g's RunFolderTest and fstest.TestFS).
//
// Run it from the implementation's tests:
//
//	func TestFileStore(t *testing.T) {
//		storetest.Run(t, func(t testing.TB) objstore.Store { ... })
//	}
//
// newStore must return an empty store, private to the calling test, and
// register its own cleanup.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/objstore"
)

// timeout bounds each contract test.
const timeout = 2 * time.Minute

// Run runs the Store contract against stores made by newStore, one per
// subtest.
func Run(t *testing.T, newStore func(t testing.TB) objstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, s objstore.Store)
	}{
		{"NotFound", testNotFound},
		{"PutGetStat", testPutGetStat},
		{"PutSeekerOffset", testPutSeekerOffset},
		{"Overwrite", testOverwrite},
		{"PutIfAbsent", testPutIfAbsent},
		{"PutCancelledContext", testPutCancelledContext},
		{"PutFailingReader", testPutFailingReader},
		{"ListOrder", testListOrder},
		{"ListEmpty", testListEmpty},
		{"ListStop", testListStop},
		{"Delete", testDelete},
		{"LargeObject", testLargeObject},
		{"ConcurrentPutIfAbsent", testConcurrentPutIfAbsent},
		{"InvalidKeys", testInvalidKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			s := newStore(t)
			tc.fn(t, ctx, s)
		})
	}
}

func put(t testing.TB, ctx context.Context, s objstore.Store, key, content string) {
	t.Helper()
	if err := s.Put(ctx, key, bytes.NewReader([]byte(content))); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t testing.TB, ctx context.Context, s objstore.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return b
}

func wantContent(t testing.TB, ctx context.Context, s objstore.Store, key, want string) {
	t.Helper()
	if got := get(t, ctx, s, key); string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantNotFound(t testing.TB, ctx context.Context, s objstore.Store, key string) {
	t.Helper()
	rc, err := s.Get(ctx, key)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get(%q) error = %v, want ErrNotFound", key, err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Stat(%q) error = %v, want ErrNotFound", key, err)
	}
}

func listKeys(t testing.TB, ctx context.Context, s objstore.Store, prefix string) []string {
	t.Helper()
	keys := []string{}
	for info, err := range s.List(ctx, prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func testNotFound(t *testing.T, ctx context.Context, s objstore.Store) {
	wantNotFound(t, ctx, s, "missing")
	wantNotFound(t, ctx, s, "no/such/dir/key")
	put(t, ctx, s, "dir/present", "x")
	wantNotFound(t, ctx, s, "dir/absent")
	wantNotFound(t, ctx, s, "dir")      // a prefix of a key is not a key
	wantNotFound(t, ctx, s, "dir/pres") // nor is a prefix of a name
}

func testPutGetStat(t *testing.T, ctx context.Context, s objstore.Store) {
	before := time.Now().Add(-time.Hour)
	put(t, ctx, s, "a/b/c.txt", "hello")
	wantContent(t, ctx, s, "a/b/c.txt", "hello")
	info, err := s.Stat(ctx, "a/b/c.txt")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != "a/b/c.txt" || info.Size != 5 {
		t.Errorf("Stat = %+v, want key a/b/c.txt size 5", info)
	}
	if info.ModTime.Before(before) {
		t.Errorf("Stat ModTime = %v, want recent", info.ModTime)
	}
	put(t, ctx, s, "empty", "")
	wantContent(t, ctx, s, "empty", "")
	if info, err := s.Stat(ctx, "empty"); err != nil || info.Size != 0 {
		t.Errorf("Stat(empty) = %+v, %v; want size 0", info, err)
	}
	if s.String() == "" {
		t.Errorf("String() is empty")
	}
}

// testPutSeekerOffset checks that Put stores a seekable reader's bytes from
// its current offset, not from the start.
func testPutSeekerOffset(t *testing.T, ctx context.Context, s objstore.Store) {
	r := bytes.NewReader([]byte("skipped:kept"))
	if _, err := r.Seek(8, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "k", r); err != nil {
		t.Fatalf("Put: %v", err)
	}
	wantContent(t, ctx, s, "k", "kept")
	// A reader that is not a ReadSeeker (spooled by some stores).
	if err := s.Put(ctx, "plain", io.MultiReader(bytes.NewReader([]byte("ab")), bytes.NewReader([]byte("cd")))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	wantContent(t, ctx, s, "plain", "abcd")
}

func testOverwrite(t *testing.T, ctx context.Context, s objstore.Store) {
	put(t, ctx, s, "k", "first version, longer")
	put(t, ctx, s, "k", "second")
	wantContent(t, ctx, s, "k", "second")
	if info, err := s.Stat(ctx, "k"); err != nil || info.Size != 6 {
		t.Errorf("Stat = %+v, %v; want size 6", info, err)
	}
	if got := listKeys(t, ctx, s, ""); !slices.Equal(got, []string{"k"}) {
		t.Errorf("List = %q, want [k]", got)
	}
}

func testPutIfAbsent(t *testing.T, ctx context.Context, s objstore.Store) {
	if err := s.PutIfAbsent(ctx, "m/1", bytes.NewReader([]byte("original"))); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	err := s.PutIfAbsent(ctx, "m/1", bytes.NewReader([]byte("intruder")))
	if !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("second PutIfAbsent error = %v, want ErrExists", err)
	}
	// A non-seekable reader too.
	err = s.PutIfAbsent(ctx, "m/1", io.MultiReader(bytes.NewReader([]byte("intruder"))))
	if !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("third PutIfAbsent error = %v, want ErrExists", err)
	}
	wantContent(t, ctx, s, "m/1", "original")
	if got := listKeys(t, ctx, s, ""); !slices.Equal(got, []string{"m/1"}) {
		t.Errorf("List = %q, want [m/1]", got)
	}
	// After a Delete the key is absent again.
	if err := s.Delete(ctx, "m/1"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIfAbsent(ctx, "m/1", bytes.NewReader([]byte("again"))); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
	wantContent(t, ctx, s, "m/1", "again")
}

// cancelReader returns data for a while, then cancels ctx and keeps
// returning data, like a producer that outlives its caller.
type cancelReader struct {
	cancel func()
	n      int
}

func (r *cancelReader) Read(p []byte) (int, error) {
	r.n++
	if r.n == 3 {
		r.cancel()
	}
	if r.n > 1000 {
		return 0, errors.New("cancelReader: read after cancel was not stopped")
	}
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// errReader returns some data and then an error.
type errReader struct{ n int }

var errBroken = errors.New("storetest: broken reader")

func (r *errReader) Read(p []byte) (int, error) {
	r.n++
	if r.n > 2 {
		return 0, errBroken
	}
	for i := range p {
		p[i] = 'y'
	}
	return len(p), nil
}

func testPutCancelledContext(t *testing.T, ctx context.Context, s objstore.Store) {
	put(t, ctx, s, "keep", "old")
	for _, key := range []string{"new", "keep"} {
		for _, ifAbsent := range []bool{false, true} {
			cctx, cancel := context.WithCancel(ctx)
			r := &cancelReader{cancel: cancel}
			var err error
			if ifAbsent {
				err = s.PutIfAbsent(cctx, key, r)
			} else {
				err = s.Put(cctx, key, r)
			}
			cancel()
			if err == nil {
				t.Fatalf("Put(%q, ifAbsent=%v) under a cancelled ctx succeeded", key, ifAbsent)
			}
			if ifAbsent && key == "keep" && errors.Is(err, objstore.ErrExists) {
				continue // also correct: checked before reading
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Put(%q, ifAbsent=%v) error = %v, want context.Canceled", key, ifAbsent, err)
			}
		}
	}
	// Already cancelled before the call.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cctx, "new", bytes.NewReader([]byte("data"))); err == nil {
		t.Fatalf("Put with a cancelled ctx succeeded")
	}
	wantNotFound(t, ctx, s, "new")
	wantContent(t, ctx, s, "keep", "old")
	if got := listKeys(t, ctx, s, ""); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("List = %q, want [keep]", got)
	}
}

func testPutFailingReader(t *testing.T, ctx context.Context, s objstore.Store) {
	put(t, ctx, s, "d/keep", "old")
	for _, key := range []string{"d/new", "d/keep", "other/deep/new"} {
		if err := s.Put(ctx, key, &errReader{}); !errors.Is(err, errBroken) {
			t.Errorf("Put(%q) error = %v, want the reader's error", key, err)
		}
		if key != "d/keep" {
			if err := s.PutIfAbsent(ctx, key, &errReader{}); !errors.Is(err, errBroken) {
				t.Errorf("PutIfAbsent(%q) error = %v, want the reader's error", key, err)
			}
		}
	}
	wantNotFound(t, ctx, s, "d/new")
	wantNotFound(t, ctx, s, "other/deep/new")
	wantContent(t, ctx, s, "d/keep", "old")
	if got := listKeys(t, ctx, s, ""); !slices.Equal(got, []string{"d/keep"}) {
		t.Errorf("List = %q, want [d/keep]", got)
	}
}

// listKeysFixture avoids one key being a directory prefix of another
// ("a" and "a/b"), which a file system cannot hold.
var listKeysFixture = []string{
	"top",
	"x/a-b",
	"x/a.b",
	"x/a/b",
	"x/a/c/d",
	"x/a/c/e.f",
	"x/a_b",
	"x/a%2Fb",
	"x/a%25",
	"x/ab",
	"x/a0",
	"x/A",
	"x/b/z",
	"x/b-",
	"y/z",
	"z.log",
}

func filterPrefix(keys []string, prefix string) []string {
	out := []string{}
	for _, k := range keys {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, k)
		}
	}
	return out
}

func testListOrder(t *testing.T, ctx context.Context, s objstore.Store) {
	// Write in a scrambled order.
	for i := range listKeysFixture {
		k := listKeysFixture[(i*7)%len(listKeysFixture)]
		put(t, ctx, s, k, "content of "+k)
	}
	sorted := slices.Clone(listKeysFixture)
	slices.Sort(sorted)
	for _, prefix := range []string{"", "x/", "x/a", "x/a/", "x/a/c", "x/a%", "x/b", "y", "z", "nope", "x/a/c/d", "x/a/c/d/", "nope/deep/", "x/zz/q", "../x/", "x//a"} {
		want := filterPrefix(sorted, prefix)
		if got := listKeys(t, ctx, s, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) =\n  %q\nwant\n  %q", prefix, got, want)
		}
	}
	for info, err := range s.List(ctx, "x/a/c/") {
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(len("content of " + info.Key)); info.Size != want {
			t.Errorf("List info %+v: size want %d", info, want)
		}
		if info.ModTime.IsZero() {
			t.Errorf("List info %+v: zero ModTime", info)
		}
	}
	for _, k := range listKeysFixture {
		wantContent(t, ctx, s, k, "content of "+k)
	}
}

func testListEmpty(t *testing.T, ctx context.Context, s objstore.Store) {
	if got := listKeys(t, ctx, s, ""); len(got) != 0 {
		t.Errorf("List(\"\") on an empty store = %q", got)
	}
	if got := listKeys(t, ctx, s, "a/"); len(got) != 0 {
		t.Errorf("List(\"a/\") on an empty store = %q", got)
	}
}

func testListStop(t *testing.T, ctx context.Context, s objstore.Store) {
	for i := range 5 {
		put(t, ctx, s, fmt.Sprintf("k/%d", i), "v")
	}
	n := 0
	for _, err := range s.List(ctx, "k/") {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("List stopped after %d, want 2", n)
	}
}

func testDelete(t *testing.T, ctx context.Context, s objstore.Store) {
	put(t, ctx, s, "a/b/c", "1")
	put(t, ctx, s, "a/b/d", "2")
	put(t, ctx, s, "a/e", "3")
	put(t, ctx, s, "f", "4")
	if err := s.Delete(ctx); err != nil {
		t.Fatalf("Delete(): %v", err)
	}
	if err := s.Delete(ctx, "a/b/c", "missing", "a/zz/missing"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, ctx, s, "a/b/c")
	if err := s.Delete(ctx, "a/b/c"); err != nil {
		t.Fatalf("Delete again: %v", err)
	}
	if got, want := listKeys(t, ctx, s, ""), []string{"a/b/d", "a/e", "f"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	if err := s.Delete(ctx, "a/b/d", "a/e"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got, want := listKeys(t, ctx, s, ""), []string{"f"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	// A key that used to be a directory can now be an object.
	put(t, ctx, s, "a", "now a file")
	wantContent(t, ctx, s, "a", "now a file")
	// Many keys at once (more than one S3 batch is left to the S3 tests).
	var keys []string
	for i := range 30 {
		k := fmt.Sprintf("many/%03d", i)
		put(t, ctx, s, k, "v")
		keys = append(keys, k)
	}
	if err := s.Delete(ctx, keys...); err != nil {
		t.Fatalf("Delete(many): %v", err)
	}
	if got := listKeys(t, ctx, s, "many/"); len(got) != 0 {
		t.Errorf("List(many/) after Delete = %q", got)
	}
}

func testLargeObject(t *testing.T, ctx context.Context, s objstore.Store) {
	data := make([]byte, 8<<20+17)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "big/seekable", bytes.NewReader(data)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	// io.MultiReader hides the Seek method.
	if err := s.Put(ctx, "big/stream", io.MultiReader(bytes.NewReader(data))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for _, k := range []string{"big/seekable", "big/stream"} {
		if got := get(t, ctx, s, k); !bytes.Equal(got, data) {
			t.Errorf("Get(%q): %d bytes differ from the %d put", k, len(got), len(data))
		}
		if info, err := s.Stat(ctx, k); err != nil || info.Size != int64(len(data)) {
			t.Errorf("Stat(%q) = %+v, %v; want size %d", k, info, err, len(data))
		}
	}
}

func testConcurrentPutIfAbsent(t *testing.T, ctx context.Context, s objstore.Store) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.PutIfAbsent(ctx, "race/key", bytes.NewReader(fmt.Appendf(nil, "writer %d", i)))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("writers %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, objstore.ErrExists):
			t.Errorf("writer %d: error = %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won: %v", errs)
	}
	wantContent(t, ctx, s, "race/key", fmt.Sprintf("writer %d", winner))
}

func testInvalidKeys(t *testing.T, ctx context.Context, s objstore.Store) {
	for _, key := range []string{"", "/abs", "a//b", "a/", "../escape", "a/../b", "./a", "a/."} {
		if err := s.Put(ctx, key, bytes.NewReader([]byte("x"))); err == nil {
			t.Errorf("Put(%q) succeeded, want an invalid key error", key)
		}
		if _, err := s.Stat(ctx, key); err == nil || errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want an invalid key error", key, err)
		}
	}
	if got := listKeys(t, ctx, s, ""); len(got) != 0 {
		t.Errorf("List after invalid Puts = %q", got)
	}
}
