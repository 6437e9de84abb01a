package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

var _ Store = (*S3Store)(nil)

// maxPutSize is the largest object a single PutObject accepts (5 GiB).
// The S3 store does not use multipart upload, so larger objects fail.
const maxPutSize = 5 << 30

// deleteBatch is the most keys one DeleteObjects request may name.
const deleteBatch = 1000

// S3Options configures the S3 client of an S3Store.
type S3Options struct {
	// Endpoint is the base URL (http:// or https://) of an S3-compatible
	// server. Default: AWS (or AWS_ENDPOINT_URL).
	Endpoint string
	// Region is the signing region. Default: the AWS config (AWS_REGION),
	// else us-east-1.
	Region string
	// PathStyle selects path-style addressing (http://host/bucket/key),
	// which most S3-compatible servers need.
	PathStyle bool
	// AccessKey and SecretKey are static credentials. When AccessKey is
	// empty the default AWS credential chain is used (AWS_ACCESS_KEY_ID /
	// AWS_SECRET_ACCESS_KEY, shared config, instance roles, ...).
	AccessKey, SecretKey string
	// MaxAttempts bounds the attempts of each request, retries included.
	// Default (0): the SDK's standard retryer (3 attempts).
	MaxAttempts int
}

// Validate reports whether the options are usable.
func (o S3Options) Validate() error {
	if o.Endpoint != "" && !strings.HasPrefix(o.Endpoint, "http://") && !strings.HasPrefix(o.Endpoint, "https://") {
		return fmt.Errorf("endpoint %q must start with http:// or https://", o.Endpoint)
	}
	if o.AccessKey != "" && o.SecretKey == "" {
		return errors.New("access key given without a secret key")
	}
	if o.MaxAttempts < 0 {
		return fmt.Errorf("negative MaxAttempts %d", o.MaxAttempts)
	}
	return nil
}

// S3Store is a Store in an S3 bucket under a key prefix: key "a/b" is the
// S3 object PREFIX/a/b.
//
// Objects are written with a single PutObject (no multipart upload), so an
// object is at most 5 GiB. S3 publishes an object only when its upload
// completes, which makes Put atomic. A Put reader that is not an
// io.ReadSeeker is first spooled to a temp file (not memory) so the length
// is known and the request can be retried. PutIfAbsent uses a conditional
// write (If-None-Match: *), which AWS S3, MinIO and versitygw honour.
//
// Request checksums and response checksum validation are only used where
// the API requires them, so S3-compatible servers that predate the AWS
// default integrity protections work.
type S3Store struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ends with "/"
	endpoint string // for messages
}

// NewS3 opens the S3 bucket under prefix and checks with HeadBucket that
// it is reachable; the error names the endpoint, the bucket and the likely
// fixes. ctx bounds only the opening.
func NewS3(ctx context.Context, bucket, prefix string, opts S3Options) (*S3Store, error) {
	if bucket == "" {
		return nil, errors.New("open s3 store: empty bucket name")
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("open s3 store: %w", err)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		if err := ValidateKey(prefix); err != nil {
			return nil, fmt.Errorf("open s3 store: prefix: %w", err)
		}
		prefix += "/"
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// The SDK's default logger writes to stderr on its own; errors
		// reach the caller instead.
		config.WithLogger(logging.Nop{}),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.AccessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKey, opts.SecretKey, "")))
	}
	if opts.MaxAttempts > 0 {
		loadOpts = append(loadOpts, config.WithRetryMaxAttempts(opts.MaxAttempts))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("open s3 store: load aws config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
	})
	s := &S3Store{client: client, bucket: bucket, prefix: prefix, endpoint: opts.Endpoint}
	if s.endpoint == "" {
		s.endpoint = "the default AWS endpoint"
		if cfg.BaseEndpoint != nil {
			s.endpoint = *cfg.BaseEndpoint
		}
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return nil, fmt.Errorf("open s3 bucket %q at %s: %w (check --s3-endpoint, "+
			"the credentials (--s3-access-key/--s3-secret-key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), and that the bucket exists)",
			bucket, s.endpoint, err)
	}
	return s, nil
}

// String returns "s3://bucket/prefix".
func (s *S3Store) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// Close releases idle connections.
func (s *S3Store) Close() error {
	if c, ok := s.client.Options().HTTPClient.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	return nil
}

func (s *S3Store) objectKey(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put uploads r to key with one PutObject, replacing any existing object;
// see S3Store for atomicity, spooling and the 5 GiB limit.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader) error {
	if err := s.put(ctx, key, r, false); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// PutIfAbsent is Put with If-None-Match: *; it fails with ErrExists when
// key already exists (HTTP 412).
func (s *S3Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	if err := s.put(ctx, key, r, true); err != nil {
		return fmt.Errorf("put %s if absent: %w", key, err)
	}
	return nil
}

func (s *S3Store) put(ctx context.Context, key string, r io.Reader, ifAbsent bool) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	body, size, cleanup, err := seekable(ctx, r)
	if err != nil {
		return err
	}
	defer cleanup()
	if size > maxPutSize {
		return fmt.Errorf("object of %d bytes exceeds the 5 GiB single-upload limit", size)
	}
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(k),
		Body:          body,
		ContentLength: aws.Int64(size),
	}
	if ifAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	// AWS answers 409 ConditionalRequestConflict when conditional writes
	// to one key race; the SDK does not retry it, so retry here.
	for attempt := 1; ; attempt++ {
		_, err = s.client.PutObject(ctx, in)
		if err == nil {
			return nil
		}
		switch status := httpStatus(err); {
		case ifAbsent && status == http.StatusPreconditionFailed:
			return ErrExists
		case ifAbsent && status == http.StatusConflict && attempt < 5:
			if _, serr := body.Seek(start, io.SeekStart); serr != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
			continue
		}
		return err
	}
}

// seekable returns r as an io.ReadSeeker with the number of bytes from its
// current offset to its end. A reader that cannot seek is spooled to an
// unlinked temp file, removed by cleanup.
func seekable(ctx context.Context, r io.Reader) (io.ReadSeeker, int64, func(), error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		if cur, err := rs.Seek(0, io.SeekCurrent); err == nil {
			if end, err := rs.Seek(0, io.SeekEnd); err == nil {
				if _, err := rs.Seek(cur, io.SeekStart); err != nil {
					return nil, 0, nil, err
				}
				return rs, end - cur, func() {}, nil
			}
			// Not really seekable (a pipe); restore and spool.
			if _, err := rs.Seek(cur, io.SeekStart); err != nil {
				return nil, 0, nil, err
			}
		}
	}
	f, err := os.CreateTemp("", "tenantwal-s3-spool-*")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spool upload: %w", err)
	}
	cleanup := func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	n, err := copyCtx(ctx, f, r)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	return f, n, cleanup, nil
}

// Get opens the object at key; ErrNotFound if there is none. ctx bounds
// the reading of the body too.
func (s *S3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		if isS3NotFound(err) {
			return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return out.Body, nil
}

// Stat describes the object at key; ErrNotFound if there is none.
func (s *S3Store) Stat(ctx context.Context, key string) (Info, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return Info{}, fmt.Errorf("stat: %w", err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		if isS3NotFound(err) {
			return Info{}, fmt.Errorf("stat %s: %w", key, ErrNotFound)
		}
		return Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return Info{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// List yields the objects whose keys start with prefix in lexical key
// order (S3 lists in UTF-8 binary order), with keys relative to the
// store's prefix. Directory marker objects (keys ending in "/") are
// skipped.
func (s *S3Store) List(ctx context.Context, prefix string) iter.Seq2[Info, error] {
	return func(yield func(Info, error) bool) {
		p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.bucket),
			Prefix: aws.String(s.prefix + prefix),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(Info{}, fmt.Errorf("list %s %q: %w", s, prefix, err))
				return
			}
			for _, o := range page.Contents {
				k := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
				if k == "" || strings.HasSuffix(k, "/") {
					continue
				}
				info := Info{Key: k, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}
				if !yield(info, nil) {
					return
				}
			}
		}
	}
}

// Delete removes the keys with DeleteObjects, 1000 per request. Missing
// keys are not an error.
func (s *S3Store) Delete(ctx context.Context, keys ...string) error {
	objs := make([]types.ObjectIdentifier, 0, min(len(keys), deleteBatch))
	flush := func() error {
		if len(objs) == 0 {
			return nil
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		})
		objs = objs[:0]
		if err != nil {
			return fmt.Errorf("delete from %s: %w", s, err)
		}
		for _, e := range out.Errors {
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			return fmt.Errorf("delete %s from %s: %s: %s", strings.TrimPrefix(aws.ToString(e.Key), s.prefix),
				s, aws.ToString(e.Code), aws.ToString(e.Message))
		}
		return nil
	}
	for _, key := range keys {
		k, err := s.objectKey(key)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		objs = append(objs, types.ObjectIdentifier{Key: aws.String(k)})
		if len(objs) == deleteBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// httpStatus returns the HTTP status code of an SDK error, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isS3NotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket" {
		return false
	}
	return httpStatus(err) == http.StatusNotFound
}
