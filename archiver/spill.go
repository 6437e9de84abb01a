package archiver

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// memSpillBytes is the size up to which an object is held in memory while
// it is written, instead of in a spill file: most objects of a flush with
// many tenants are a few KiB, for which creating, reading back and
// removing a file costs more than writing them. At most CommitConcurrency
// objects are held at once.
const memSpillBytes = 256 << 10

// spillBufs recycles the in-memory spills.
var spillBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// spill holds an object while it is written: in memory up to
// memSpillBytes, then in a file of dir.
type spill struct {
	dir string
	buf *bytes.Buffer
	f   *os.File
}

func newSpill(dir string) *spill { return &spill{dir: dir, buf: spillBufs.Get().(*bytes.Buffer)} }

func (s *spill) Write(p []byte) (int, error) {
	if s.f == nil && s.buf.Len()+len(p) <= memSpillBytes {
		return s.buf.Write(p)
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "tenantwal-*.parquet")
		if err != nil {
			return 0, err
		}
		s.f = f
		if _, err := f.Write(s.buf.Bytes()); err != nil {
			return 0, err
		}
		s.release()
	}
	return s.f.Write(p)
}

// reader returns the object written so far, from its start.
func (s *spill) reader() (io.Reader, error) {
	if s.f == nil {
		return bytes.NewReader(s.buf.Bytes()), nil
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return s.f, nil
}

func (s *spill) release() {
	if s.buf != nil {
		s.buf.Reset()
		spillBufs.Put(s.buf)
		s.buf = nil
	}
}

// close removes the spill file, if any, and recycles the buffer.
func (s *spill) close() {
	s.release()
	if s.f != nil {
		_ = s.f.Close()
		_ = os.Remove(s.f.Name())
	}
}
