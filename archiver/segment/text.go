package segment

import (
	"math"
	"strconv"
)

// parseCanonInt parses b as a decimal integer in [lo, hi] and reports
// whether b is exactly the text strconv.FormatInt (and PostgreSQL) prints
// for it: no sign other than a leading '-', no leading zeros, no "-0", no
// spaces.
func parseCanonInt(b []byte, lo, hi int64) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if len(d) == 0 || len(d) > 19 || (d[0] == '0' && (len(d) > 1 || neg)) {
		return 0, false
	}
	var u uint64
	for _, c := range d {
		c -= '0'
		if c > 9 {
			return 0, false
		}
		u = u*10 + uint64(c) // 19 digits always fit in a uint64
	}
	if neg {
		if u > uint64(math.MaxInt64)+1 {
			return 0, false
		}
		v := int64(-u) // two's complement: 1<<63 becomes MinInt64
		return v, v >= lo
	}
	if u > uint64(hi) {
		return 0, false
	}
	return int64(u), true
}

func appendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

const hexDigits = "0123456789abcdef"

// unhex maps a lowercase hex digit to its value and anything else to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < 16; i++ {
		t[hexDigits[i]] = byte(i)
	}
	return t
}()

// appendUnhexBytea appends the bytes of PostgreSQL's hex bytea output
// ("\x" then lowercase hex digit pairs) to dst. It reports false, with dst
// unchanged in length, when b is not in that exact form.
func appendUnhexBytea(dst, b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != '\\' || b[1] != 'x' || len(b)%2 != 0 {
		return dst, false
	}
	h := b[2:]
	n := len(dst)
	out := growLen(dst, len(h)/2)
	for i, j := 0, n; i < len(h); i, j = i+2, j+1 {
		hi, lo := unhex[h[i]], unhex[h[i+1]]
		if hi > 15 || lo > 15 {
			return dst[:n], false
		}
		out[j] = hi<<4 | lo
	}
	return out, true
}

// appendHexBytea appends "\x" and the lowercase hex of raw to dst.
func appendHexBytea(dst, raw []byte) []byte {
	n := len(dst)
	dst = growLen(dst, 2+2*len(raw))
	dst[n], dst[n+1] = '\\', 'x'
	j := n + 2
	for _, c := range raw {
		dst[j], dst[j+1] = hexDigits[c>>4], hexDigits[c&0x0f]
		j += 2
	}
	return dst
}

// growLen extends b by n bytes (contents unspecified), reallocating with
// amortised doubling when needed.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}
