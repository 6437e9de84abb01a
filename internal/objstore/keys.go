package objstore

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// tempPrefix starts the name of every temporary file the file store
// writes. Keys with a segment starting with it are rejected so that a temp
// file can never be mistaken for an object.
const tempPrefix = ".tenantwal-tmp-"

// ValidateKey reports whether key is a valid object key: non-empty,
// slash-separated, not starting or ending with "/", without empty, "." or
// ".." segments, without NUL or backslash bytes, and without a segment
// starting with the file store's reserved temp-file prefix.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("invalid object key %q: empty", key)
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("invalid object key %q: must be relative (no leading /)", key)
	}
	if strings.ContainsAny(key, "\x00\\") {
		return fmt.Errorf("invalid object key %q: contains NUL or backslash", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("invalid object key %q: empty path segment", key)
		case seg == "." || seg == "..":
			return fmt.Errorf("invalid object key %q: %q segment not allowed", key, seg)
		case strings.HasPrefix(seg, tempPrefix):
			return fmt.Errorf("invalid object key %q: segment prefix %q is reserved", key, tempPrefix)
		}
	}
	return nil
}

// copyBufs are copyCtx's buffers: an archiver flush puts thousands of
// small objects, and a fresh 256 KiB buffer for each was most of its
// allocation.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// copyCtx copies r to w like io.Copy, but checks ctx before every read so
// that a copy from a slow or endless reader stops when the caller gives up.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		nr, rerr := r.Read(buf)
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, ctx.Err()
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
