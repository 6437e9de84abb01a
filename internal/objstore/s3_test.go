package objstore_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/internal/objstore/storetest"
	"github.com/tenantwal/tenantwal/internal/s3test"
)

func s3Options(t testing.TB) objstore.S3Options {
	t.Helper()
	endpoint, ak, sk := s3test.Start(t)
	return objstore.S3Options{Endpoint: endpoint, Region: s3test.Region, PathStyle: true, AccessKey: ak, SecretKey: sk}
}

func newS3(t testing.TB, prefix string) *objstore.S3Store {
	t.Helper()
	opts := s3Options(t)
	bucket := s3test.Bucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := objstore.NewS3(ctx, bucket, prefix, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestS3Store(t *testing.T) {
	storetest.Run(t, func(t testing.TB) objstore.Store { return newS3(t, "") })
}

func TestS3StorePrefix(t *testing.T) {
	storetest.Run(t, func(t testing.TB) objstore.Store { return newS3(t, "tenant/a") })
}

// TestS3PrefixIsolation checks that a store sees only its own prefix and
// that keys are relative to it.
func TestS3PrefixIsolation(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	opts := s3Options(t)
	bucket := s3test.Bucket(t)
	a, err := objstore.Open(ctx, "s3://"+bucket+"/t/a", opts)
	if err != nil {
		t.Fatal(err)
	}
	ab, err := objstore.Open(ctx, "s3://"+bucket+"/t/ab/", opts)
	if err != nil {
		t.Fatal(err)
	}
	root, err := objstore.Open(ctx, "s3://"+bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.String(), "s3://"+bucket+"/t/a"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, s := range []objstore.Store{a, ab} {
		if err := s.Put(ctx, "k", strings.NewReader(s.String())); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		s    objstore.Store
		want []string
	}{{a, []string{"k"}}, {ab, []string{"k"}}, {root, []string{"t/a/k", "t/ab/k"}}} {
		var got []string
		for info, err := range tc.s.List(ctx, "") {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, info.Key)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: List = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestS3DeleteBatches deletes more keys than one DeleteObjects request
// takes.
func TestS3DeleteBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: writes 1100 objects")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s := newS3(t, "p")
	keys := make([]string, 1100)
	for i := range keys {
		keys[i] = fmt.Sprintf("k/%04d", i)
		if err := s.Put(ctx, keys[i], strings.NewReader("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, append(keys, "k/missing")...); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, err := range s.List(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		t.Fatal("objects left after Delete")
	}
}

func TestS3OpenWrongEndpoint(t *testing.T) {
	// A port that was free a moment ago: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = objstore.Open(ctx, "s3://tenantwal-missing/x", objstore.S3Options{
		Endpoint: endpoint, PathStyle: true, AccessKey: "k", SecretKey: "s", MaxAttempts: 1,
	})
	if err == nil {
		t.Fatal("Open with a closed endpoint succeeded")
	}
	t.Logf("error: %v", err)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v to fail", d)
	}
	for _, want := range []string{endpoint, "tenantwal-missing", "--s3-endpoint", "AWS_ACCESS_KEY_ID", "bucket exists"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestS3OpenMissingBucket(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := objstore.NewS3(ctx, "no-such-bucket-here", "", s3Options(t))
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket-here") {
		t.Fatalf("NewS3 of a missing bucket: %v", err)
	}
}

func TestS3OpenWrongCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	opts := s3Options(t)
	opts.SecretKey = "wrong"
	bucket := s3test.Bucket(t)
	_, err := objstore.NewS3(ctx, bucket, "", opts)
	if err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("NewS3 with a wrong secret: %v", err)
	}
}

func TestS3BadEndpointScheme(t *testing.T) {
	_, err := objstore.NewS3(t.Context(), "b", "", objstore.S3Options{Endpoint: "127.0.0.1:9000"})
	if err == nil || !strings.Contains(err.Error(), "http://") {
		t.Fatalf("NewS3 with a scheme-less endpoint: %v", err)
	}
}
