package archiver

import (
	"testing"

	"github.com/tenantwal/tenantwal/archiver/segment"
	"github.com/tenantwal/tenantwal/schemas"
)

// TestSegmentOptionsSnapshotLevel checks which zstd level each kind of
// object is written with.
func TestSegmentOptionsSnapshotLevel(t *testing.T) {
	for _, tc := range []struct {
		name          string
		cfg           Config
		snap, segment int
	}{
		{"defaults", Config{}, defaultSnapshotLevel, 0},
		{"zstd named", Config{Segment: segment.Options{Compression: "zstd"}, SnapshotCompressionLevel: 19}, 19, 0},
		{"segment level wins", Config{Segment: segment.Options{CompressionLevel: 2}}, 2, 2},
		{"snapshots like segments", Config{SnapshotCompressionLevel: -1}, 0, 0},
		{"not zstd", Config{Segment: segment.Options{Compression: "snappy"}}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(4); err != nil {
				t.Fatal(err)
			}
			for kind, want := range map[string]int{schemas.EntrySnapshot: tc.snap, schemas.EntrySegment: tc.segment} {
				o := tc.cfg.segmentOptions(kind)
				if o.CompressionLevel != want {
					t.Errorf("%s objects: level %d, want %d", kind, o.CompressionLevel, want)
				}
				if err := o.Validate(); err != nil {
					t.Errorf("%s objects: %v", kind, err)
				}
			}
		})
	}
	for _, bad := range []int{-2, 23} {
		c := Config{SnapshotCompressionLevel: bad}
		if err := c.Validate(4); err == nil {
			t.Errorf("SnapshotCompressionLevel %d: no error", bad)
		}
	}
}
