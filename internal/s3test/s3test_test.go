package s3test

import (
	"regexp"
	"strings"
	"testing"
)

var validBucket = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

func TestBucketName(t *testing.T) {
	for _, name := range []string{
		"TestX",
		"TestS3Store/PutIfAbsent",
		"Test_Weird__Name/#01",
		strings.Repeat("TestVeryLong", 10),
		"-",
	} {
		if got := bucketName(name, 12); !validBucket.MatchString(got) {
			t.Errorf("bucketName(%q) = %q, not a valid bucket name", name, got)
		}
	}
	if bucketName("TestA", 1) == bucketName("TestA", 2) {
		t.Errorf("bucket names not unique")
	}
}

func TestStartAndBucket(t *testing.T) {
	ep, ak, sk := Start(t)
	if !strings.HasPrefix(ep, "http://127.0.0.1:") || ak == "" || sk == "" {
		t.Fatalf("Start = %q, %q, %q", ep, ak, sk)
	}
	if ep2, _, _ := Start(t); ep2 != ep {
		t.Errorf("second Start = %q, want the same server %q", ep2, ep)
	}
	b1, b2 := Bucket(t), Bucket(t)
	if b1 == b2 || !validBucket.MatchString(b1) {
		t.Errorf("Bucket = %q, %q", b1, b2)
	}
}
