package archiver

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// TestSpillMemoryThenFile: an object up to memSpillBytes stays in memory;
// a bigger one moves to a file in the spill dir, which close removes; both
// read back whole.
func TestSpillMemoryThenFile(t *testing.T) {
	for _, size := range []int{0, 10, memSpillBytes, memSpillBytes + 1, 3 * memSpillBytes} {
		dir := t.TempDir()
		want := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		s := newSpill(dir)
		for p := want; len(p) > 0; {
			n := min(len(p), 1000)
			if _, err := s.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		files, _ := os.ReadDir(dir)
		if inFile := size > memSpillBytes; (len(files) == 1) != inFile {
			t.Errorf("%d bytes: %d spill files", size, len(files))
		}
		r, err := s.reader()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%d bytes: read back %d different bytes", size, len(got))
		}
		s.close()
		if files, _ := os.ReadDir(dir); len(files) != 0 {
			t.Errorf("%d bytes: %d spill files left after close", size, len(files))
		}
	}
}
