package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/objstore/storetest"
)

func TestFileStore(t *testing.T) {
	storetest.Run(t, func(t testing.TB) objstore.Store {
		t.Helper()
		s, err := objstore.NewFile(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// allFiles returns every path under dir, relative and slash-separated,
// directories with a trailing "/".
func allFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	r.n++
	if r.n > 3 {
		return 0, errors.New("disk on fire")
	}
	return copy(p, bytes.Repeat([]byte("z"), len(p))), nil
}

func TestFileStoreNoTempLitter(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	s, err := objstore.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "seg/keep", strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"seg/keep", "seg/new", "deep/er/new"} {
		if err := s.Put(ctx, key, &failingReader{}); err == nil {
			t.Fatalf("Put(%q) with a failing reader succeeded", key)
		}
		if err := s.PutIfAbsent(ctx, key, &failingReader{}); err == nil {
			t.Fatalf("PutIfAbsent(%q) with a failing reader succeeded", key)
		}
		cctx, ccancel := context.WithCancel(ctx)
		ccancel()
		if err := s.Put(cctx, key, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put(%q) with a cancelled ctx: %v", key, err)
		}
	}
	if err := s.PutIfAbsent(ctx, "seg/keep", strings.NewReader("new")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("PutIfAbsent over an existing key: %v", err)
	}
	// Only the kept object remains; directories created for failed writes
	// may remain but hold no files.
	for _, f := range allFiles(t, dir) {
		if !strings.HasSuffix(f, "/") && f != "seg/keep" {
			t.Errorf("unexpected file left behind: %s", f)
		}
	}
}

func TestFileStoreListSkipsTempFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := objstore.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/b", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// A temp file left by a crash.
	if err := os.WriteFile(filepath.Join(dir, "a", ".tenantwal-tmp-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for info, err := range s.List(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	if !slices.Equal(keys, []string{"a/b"}) {
		t.Errorf("List = %q, want [a/b]", keys)
	}
	if err := s.Put(ctx, "a/.tenantwal-tmp-9", strings.NewReader("x")); err == nil {
		t.Errorf("Put of a key in the reserved temp namespace succeeded")
	}
}

func TestFileStoreDeleteRemovesEmptyDirs(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := objstore.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"t/1/seg/a", "t/1/seg/b", "t/2/x"} {
		if err := s.Put(ctx, k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "t/1/seg/a", "t/1/seg/b"); err != nil {
		t.Fatal(err)
	}
	if got, want := allFiles(t, dir), []string{"t/", "t/2/", "t/2/x"}; !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	if err := s.Delete(ctx, "t/2/x"); err != nil {
		t.Fatal(err)
	}
	if got := allFiles(t, dir); len(got) != 0 {
		t.Errorf("files = %q, want none", got)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("root removed: %v", err)
	}
}

func TestFileKeyValidation(t *testing.T) {
	s, err := objstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/", "a\\b"} {
		err := s.Put(t.Context(), key, strings.NewReader("x"))
		if err == nil || !strings.Contains(err.Error(), "invalid object key") {
			t.Errorf("Put(%q) error = %v, want an invalid object key error", key, err)
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := t.Context()
	base := t.TempDir()
	t.Chdir(base)
	for _, tc := range []struct{ url, dir string }{
		{"file://" + filepath.Join(base, "abs", "dir"), filepath.Join(base, "abs", "dir")},
		{"file://rel/dir", filepath.Join(base, "rel", "dir")},
		{"bare/path", filepath.Join(base, "bare", "path")},
		{filepath.Join(base, "bare-abs"), filepath.Join(base, "bare-abs")},
	} {
		s, err := objstore.Open(ctx, tc.url, objstore.S3Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", tc.url, err)
		}
		fs, ok := s.(*objstore.FileStore)
		if !ok {
			t.Fatalf("Open(%q) = %T, want *FileStore", tc.url, s)
		}
		if fs.Dir() != tc.dir {
			t.Errorf("Open(%q).Dir() = %q, want %q", tc.url, fs.Dir(), tc.dir)
		}
		if fi, err := os.Stat(tc.dir); err != nil || !fi.IsDir() {
			t.Errorf("Open(%q) did not create %s: %v", tc.url, tc.dir, err)
		}
	}
	for _, url := range []string{"", "gs://bucket/x", "http://host/x", "s3://", "s3:///prefix", "file://"} {
		_, err := objstore.Open(ctx, url, objstore.S3Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if strings.Contains(url, "://") && !strings.Contains(err.Error(), "s3://bucket") && !strings.Contains(err.Error(), "file://") {
			t.Errorf("Open(%q) error %q does not name the supported forms", url, err)
		}
	}
}
