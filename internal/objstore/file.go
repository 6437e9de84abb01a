package objstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
)

var _ Store = (*FileStore)(nil)

// FileStore is a Store in a local directory: key "a/b/c" is the file
// DIR/a/b/c. Because keys map to paths, one key cannot be a directory prefix
// of another ("a" and "a/b" cannot both exist); Put of the second fails.
//
// Writes go to a temp file in the target's directory (named with a reserved
// prefix that List skips), are fsynced, and are published with rename (Put)
// or link (PutIfAbsent), after which the directory is fsynced. A reader
// never sees a partial object, and a failed write leaves no file behind
// (except after a crash, where a temp file may remain; List ignores it).
type FileStore struct {
	root string // absolute, cleaned
}

// NewFile opens a FileStore rooted at dir, creating dir (mkdir -p) if it
// does not exist.
func NewFile(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("open file store: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open file store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	return &FileStore{root: abs}, nil
}

// Dir returns the store's absolute root directory.
func (s *FileStore) Dir() string { return s.root }

// String returns "file://" and the root directory.
func (s *FileStore) String() string { return "file://" + filepath.ToSlash(s.root) }

// Close does nothing; a FileStore holds no resources.
func (s *FileStore) Close() error { return nil }

func (s *FileStore) path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put writes r to key atomically, replacing any existing object. When it
// returns nil the object and its directory entry are fsynced.
func (s *FileStore) Put(ctx context.Context, key string, r io.Reader) error {
	p, err := s.path(key)
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	err = s.write(ctx, p, r, func(tmp string) error { return os.Rename(tmp, p) })
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// PutIfAbsent is Put that fails with ErrExists, writing nothing, when key
// already exists. It publishes with a hard link, which the file system
// makes exclusive, so of two concurrent calls exactly one wins.
func (s *FileStore) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	p, err := s.path(key)
	if err != nil {
		return fmt.Errorf("put %s if absent: %w", key, err)
	}
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("put %s if absent: %w", key, ErrExists)
	}
	err = s.write(ctx, p, r, func(tmp string) error {
		if err := os.Link(tmp, p); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return ErrExists
			}
			return err
		}
		_ = os.Remove(tmp) // published; a leftover temp file is only litter
		return nil
	})
	if err != nil {
		return fmt.Errorf("put %s if absent: %w", key, err)
	}
	return nil
}

// write copies r into a fsynced temp file next to p and calls publish with
// the temp file's path; it then fsyncs the directory. The temp file is
// removed on every error.
func (s *FileStore) write(ctx context.Context, p string, r io.Reader, publish func(tmp string) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(p)
	f, err := s.createTemp(dir)
	if err != nil {
		return err
	}
	tmp := f.Name()
	published := false
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if err != nil && !published {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := copyCtx(ctx, f, r); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return cerr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := publish(tmp); err != nil {
		return err
	}
	published = true
	return syncDir(dir)
}

// createTemp creates a temp file in dir, creating dir and its parents. A
// concurrent Delete may remove a just-created empty directory, so it
// retries a few times when the directory vanishes.
func (s *FileStore) createTemp(dir string) (*os.File, error) {
	var err error
	for range 10 {
		if err = s.mkdirAll(dir); err != nil {
			return nil, err
		}
		var f *os.File
		f, err = os.CreateTemp(dir, tempPrefix+"*")
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// mkdirAll creates dir and its missing parents below the root, fsyncing
// the parent of each directory it creates.
func (s *FileStore) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if dir == s.root || len(dir) <= len(s.root) {
		return os.MkdirAll(dir, 0o755)
	}
	parent := filepath.Dir(dir)
	if err := s.mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(parent)
}

// Get opens the object at key; ErrNotFound if there is none.
func (s *FileStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	f, err := os.Open(p)
	if err != nil {
		if isNotExist(err) {
			return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	return f, nil
}

// Stat describes the object at key; ErrNotFound if there is none.
func (s *FileStore) Stat(ctx context.Context, key string) (Info, error) {
	p, err := s.path(key)
	if err != nil {
		return Info{}, fmt.Errorf("stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		if isNotExist(err) {
			return Info{}, fmt.Errorf("stat %s: %w", key, ErrNotFound)
		}
		return Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("stat %s: %w", key, ErrNotFound)
	}
	return Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List yields the objects whose keys start with prefix (a key prefix, not
// necessarily a directory) in lexical key order, skipping temp files.
// Objects written or deleted during the walk may or may not be seen.
func (s *FileStore) List(ctx context.Context, prefix string) iter.Seq2[Info, error] {
	return func(yield func(Info, error) bool) {
		if _, err := s.walk(ctx, listStart(prefix), prefix, yield); err != nil {
			yield(Info{}, fmt.Errorf("list %s %q: %w", s, prefix, err))
		}
	}
}

// listStart is the deepest directory that holds every key starting with
// prefix: the prefix up to its last "/" ("" for the root). Listing one
// tenant's manifest then reads that tenant's directories, not the
// directory of every tenant. A prefix whose directory part is not a valid
// key (ValidateKey) starts at the root, where walk's prefix filter still
// applies.
func listStart(prefix string) string {
	dir := prefix[:strings.LastIndex(prefix, "/")+1]
	if dir == "" || ValidateKey(strings.TrimSuffix(dir, "/")) != nil {
		return ""
	}
	return dir
}

// walk lists directory rel (a key prefix ending in "/", or "") and
// descends into the subdirectories that can hold keys starting with
// prefix. It returns false when yield asked to stop.
func (s *FileStore) walk(ctx context.Context, rel, prefix string, yield func(Info, error) bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	entries, err := os.ReadDir(filepath.Join(s.root, filepath.FromSlash(rel)))
	if err != nil {
		if isNotExist(err) {
			return true, nil // removed by a concurrent Delete
		}
		return false, err
	}
	// A directory's keys all start with name+"/", so sorting directories
	// by that string makes a depth-first walk yield keys in lexical order.
	type entry struct {
		name string // with a trailing "/" for directories
		de   fs.DirEntry
	}
	sorted := make([]entry, 0, len(entries))
	for _, de := range entries {
		name := de.Name()
		if strings.HasPrefix(name, tempPrefix) {
			continue
		}
		if de.IsDir() {
			name += "/"
		} else if !de.Type().IsRegular() {
			continue
		}
		k := rel + name
		if !strings.HasPrefix(k, prefix) && !(de.IsDir() && strings.HasPrefix(prefix, k)) {
			continue
		}
		sorted = append(sorted, entry{name, de})
	}
	slices.SortFunc(sorted, func(a, b entry) int { return cmp.Compare(a.name, b.name) })
	for _, e := range sorted {
		k := rel + e.name
		if e.de.IsDir() {
			more, err := s.walk(ctx, k, prefix, yield)
			if err != nil || !more {
				return more, err
			}
			continue
		}
		fi, err := e.de.Info()
		if err != nil {
			if isNotExist(err) {
				continue
			}
			return false, err
		}
		if !yield(Info{Key: k, Size: fi.Size(), ModTime: fi.ModTime()}, nil) {
			return false, nil
		}
	}
	return true, nil
}

// Delete removes the keys and then any directories left empty (never the
// root). Missing keys are not an error; a key naming a directory (a prefix
// of other keys) is treated as missing.
func (s *FileStore) Delete(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		p, err := s.path(key)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if fi, err := os.Lstat(p); err != nil || fi.IsDir() {
			if err != nil && !isNotExist(err) {
				return fmt.Errorf("delete %s: %w", key, err)
			}
			continue
		}
		if err := os.Remove(p); err != nil && !isNotExist(err) {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		dir := filepath.Dir(p)
		for dir != s.root && len(dir) > len(s.root) {
			if os.Remove(dir) != nil {
				break // not empty, or already gone
			}
			dir = filepath.Dir(dir)
		}
		if err := syncDir(dir); err != nil && !isNotExist(err) {
			return fmt.Errorf("delete %s: %w", key, err)
		}
	}
	return nil
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// syncDir fsyncs a directory so that entries created or removed in it are
// durable. Windows cannot fsync directories; there it does nothing.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
