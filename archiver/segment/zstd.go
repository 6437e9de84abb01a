package segment

import (
	"io"
	"sync"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// zstdWindow is the window of the zstd encoders that compress pages. A
// Parquet page is one zstd frame, and pages are about 1 MiB (the writer's
// default data and dictionary page sizes), so a larger window finds no
// more matches: a page up to the window is encoded to the same bytes.
// arrow-go's own codec uses zstd's default 8 MiB window, for which every
// encoder allocates a 16 MiB history buffer: tens of MiB of resident memory
// with a few objects written at once, and most of the CPU of writing a
// small object (the encoders are pooled in a sync.Pool, which a garbage
// collection empties).
const zstdWindow = 1 << 20

// zstdCodec is arrow-go's zstd codec with encoders of a zstdWindow window.
// Decoding, and streams, are arrow-go's.
type zstdCodec struct {
	base  compress.Codec
	mu    sync.Mutex
	pools map[zstd.EncoderLevel]*sync.Pool
}

func init() {
	base, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		panic(err)
	}
	compress.RegisterCodec(compress.Codecs.Zstd, &zstdCodec{base: base, pools: map[zstd.EncoderLevel]*sync.Pool{}})
}

func (c *zstdCodec) pool(level zstd.EncoderLevel) *sync.Pool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[level]
	if p == nil {
		p = &sync.Pool{New: func() any {
			// The options are arrow-go's, with the window.
			enc, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(level),
				zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true), zstd.WithWindowSize(zstdWindow))
			if err != nil {
				panic(err) // constant options
			}
			return enc
		}}
		c.pools[level] = p
	}
	return p
}

func (c *zstdCodec) Encode(dst, src []byte) []byte {
	return c.EncodeLevel(dst, src, compress.DefaultCompressionLevel)
}

func (c *zstdCodec) EncodeLevel(dst, src []byte, level int) []byte {
	l := zstd.SpeedDefault
	if level != compress.DefaultCompressionLevel {
		l = zstd.EncoderLevelFromZstd(level)
	}
	p := c.pool(l)
	enc := p.Get().(*zstd.Encoder)
	defer p.Put(enc)
	return enc.EncodeAll(src, dst[:0])
}

func (c *zstdCodec) CompressBound(n int64) int64 { return c.base.CompressBound(n) }

func (c *zstdCodec) Decode(dst, src []byte) []byte { return c.base.Decode(dst, src) }

func (c *zstdCodec) DecodeWithError(dst, src []byte) ([]byte, error) {
	return compress.Decode(c.base, dst, src)
}

func (c *zstdCodec) NewReader(r io.Reader) io.ReadCloser {
	return c.base.(compress.StreamingCodec).NewReader(r)
}

func (c *zstdCodec) NewWriter(w io.Writer) io.WriteCloser {
	return c.base.(compress.StreamingCodec).NewWriter(w)
}

func (c *zstdCodec) NewWriterLevel(w io.Writer, level int) (io.WriteCloser, error) {
	return c.base.(compress.StreamingCodec).NewWriterLevel(w, level)
}

var (
	_ compress.ErrorCodec     = (*zstdCodec)(nil)
	_ compress.StreamingCodec = (*zstdCodec)(nil)
)
