// Package objstore is tenantwal's object storage: a small Store interface
// with a local directory implementation (file://DIR, the embedded default)
// and an S3 implementation (s3://bucket/prefix). Open dispatches on the URL.
//
// Keys are slash-separated, never start with "/", and never contain "." or
// ".." segments. Every implementation passes storetest.Run.
package objstore

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"
)

// ErrNotFound is returned (wrapped) by Get and Stat for a missing key.
var ErrNotFound = errors.New("object not found")

// ErrExists is returned (wrapped) by PutIfAbsent when the key already exists.
var ErrExists = errors.New("object already exists")

// Info describes one stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is an object store.
type Store interface {
	// Put stores r's bytes at key, replacing any object there. It is atomic:
	// readers see the old object or the whole new one, never a part, also
	// when ctx is cancelled or the process dies mid-write. When Put returns
	// nil the object is durable.
	Put(ctx context.Context, key string, r io.Reader) error
	// PutIfAbsent is Put that fails with ErrExists, writing nothing, when
	// key already exists. Two concurrent calls for one key: one wins.
	PutIfAbsent(ctx context.Context, key string, r io.Reader) error
	// Get opens the object at key; ErrNotFound if there is none.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes the object at key; ErrNotFound if there is none.
	Stat(ctx context.Context, key string) (Info, error)
	// List yields the objects whose keys start with prefix, in lexical
	// key order. Iteration stops at the first error.
	List(ctx context.Context, prefix string) iter.Seq2[Info, error]
	// Delete removes the keys; missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// String names the store for messages, without credentials.
	String() string
	// Close releases the store's resources.
	Close() error
}
