package objstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Open opens the store named by url:
//
//   - "file:///abs/dir", "file://rel/dir" or a bare path: a FileStore in
//     that directory, created if missing (mkdir -p);
//   - "s3://bucket" or "s3://bucket/prefix": an S3Store configured by s3
//     (which is ignored for file stores).
//
// Any other scheme is an error listing the supported forms. ctx bounds
// only the opening.
func Open(ctx context.Context, url string, s3 S3Options) (Store, error) {
	switch {
	case url == "":
		return nil, errors.New("open store: empty URL (want file:///dir, file://rel/dir, a path, or s3://bucket/prefix)")
	case strings.HasPrefix(url, "file://"):
		dir := strings.TrimPrefix(url, "file://")
		if dir == "" {
			return nil, fmt.Errorf("open store %q: empty directory (want file:///abs/dir or file://rel/dir)", url)
		}
		return NewFile(dir)
	case strings.HasPrefix(url, "s3://"):
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(url, "s3://"), "/")
		if bucket == "" {
			return nil, fmt.Errorf("open store %q: empty bucket (want s3://bucket/prefix)", url)
		}
		return NewS3(ctx, bucket, prefix, s3)
	case strings.Contains(url, "://"):
		scheme, _, _ := strings.Cut(url, "://")
		return nil, fmt.Errorf("open store %q: unsupported scheme %q (want file:///abs/dir, file://rel/dir, a bare path, or s3://bucket/prefix)", url, scheme)
	default:
		return NewFile(url)
	}
}
