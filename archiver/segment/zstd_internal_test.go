package segment

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// TestZstdCodecSameBytes: the registered zstd codec is ours, and it encodes
// a page up to its window to the same bytes as arrow-go's encoder (zstd's
// default window) at the levels the archiver uses; a larger page reads back
// whole.
func TestZstdCodecSameBytes(t *testing.T) {
	c, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*zstdCodec); !ok {
		t.Fatalf("zstd codec is %T, want *zstdCodec", c)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	page := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			fmt.Fprintf(&b, "%d,tenant-%d,%q;", rng.IntN(1e6), rng.IntN(50), []string{"open", "closed", "paid"}[rng.IntN(3)])
		}
		return b.Bytes()[:n]
	}
	for _, level := range []int{compress.DefaultCompressionLevel, 1, 3, 9} {
		l := zstd.SpeedDefault
		if level != compress.DefaultCompressionLevel {
			l = zstd.EncoderLevelFromZstd(level)
		}
		ref, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(l),
			zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{100, 64 << 10, 300 << 10, zstdWindow, 3 * zstdWindow} {
			src := page(n)
			got := c.EncodeLevel(nil, src, level)
			if n <= zstdWindow {
				if want := ref.EncodeAll(src, nil); !bytes.Equal(got, want) {
					t.Errorf("level %d, %d bytes: %d bytes encoded, arrow-go's encoder gives %d other bytes", level, n, len(got), len(want))
				}
			}
			back, err := compress.Decode(c, nil, got)
			if err != nil || !bytes.Equal(back, src) {
				t.Errorf("level %d, %d bytes: decoded %d bytes (%v)", level, n, len(back), err)
			}
		}
	}
}
