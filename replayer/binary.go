package replayer

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"

	"github.com/tenantwal/tenantwal/schemas"
)

// COPY binary format: the server parses integers, numerics and timestamps
// faster from it than from text. The archive holds PostgreSQL's text
// output, so a table is copied in binary only when every column's type has
// an encoder below, and each encoder converts only text whose value it can
// state exactly (what the type's input function would read); anything else
// (another DateStyle, a BC date, numeric Infinity, …) makes the table
// start again in text format (errNotBinary).

// errNotBinary stops a binary COPY at a value that has no exact binary
// form here: the table is loaded again in text format.
var errNotBinary = errors.New("value has no exact binary form")

// binEncoder appends the binary form of one non-NULL text value, or
// reports false.
type binEncoder func(b, text []byte) ([]byte, bool)

// Built-in type OIDs (fixed in PostgreSQL's catalog).
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidJSON        = 114
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// binaryEncoders returns one encoder per column of ts, or nil when a
// column's type has none (the table is copied in text format).
func binaryEncoders(ts *schemas.TableSchema) []binEncoder {
	encs := make([]binEncoder, len(ts.Columns))
	for i, c := range ts.Columns {
		switch c.TypeOID {
		case oidText, oidVarchar, oidBpchar, oidJSON:
			// The receive functions read the bytes as the input
			// functions read the text (typmod included).
			encs[i] = encodeRaw
		case oidJSONB:
			encs[i] = encodeJSONB
		case oidBool:
			encs[i] = encodeBool
		case oidInt2:
			encs[i] = encodeInt(16)
		case oidInt4:
			encs[i] = encodeInt(32)
		case oidInt8:
			encs[i] = encodeInt(64)
		case oidNumeric:
			encs[i] = encodeNumeric
		case oidDate:
			encs[i] = encodeDate
		case oidTimestamp:
			encs[i] = encodeTimestamp(false)
		case oidTimestamptz:
			encs[i] = encodeTimestamp(true)
		case oidUUID:
			encs[i] = encodeUUID
		default:
			return nil
		}
	}
	return encs
}

// copyBinaryHeader starts a COPY binary stream: signature, flags, header
// extension length.
var copyBinaryHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyBinaryTrailer ends it.
var copyBinaryTrailer = []byte{0xff, 0xff}

// appendBinaryRow appends one tuple.
func appendBinaryRow(b []byte, vals []schemas.Value, encs []binEncoder) ([]byte, bool) {
	b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
	for i, v := range vals {
		if v.Kind != schemas.ValueText {
			b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // -1: NULL
			continue
		}
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		var ok bool
		if b, ok = encs[i](b, v.Data); !ok {
			return b, false
		}
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	}
	return b, true
}

func encodeRaw(b, text []byte) ([]byte, bool) { return append(b, text...), true }

func encodeJSONB(b, text []byte) ([]byte, bool) { return append(append(b, 1), text...), true }

func encodeBool(b, text []byte) ([]byte, bool) {
	switch string(text) {
	case "t":
		return append(b, 1), true
	case "f":
		return append(b, 0), true
	}
	return b, false
}

func encodeInt(bits int) binEncoder {
	return func(b, text []byte) ([]byte, bool) {
		n, err := strconv.ParseInt(string(text), 10, bits)
		if err != nil {
			return b, false
		}
		switch bits {
		case 16:
			return binary.BigEndian.AppendUint16(b, uint16(n)), true
		case 32:
			return binary.BigEndian.AppendUint32(b, uint32(n)), true
		}
		return binary.BigEndian.AppendUint64(b, uint64(n)), true
	}
}

// encodeNumeric converts "[-]digits[.digits]" (and NaN) to the numeric
// wire form: ndigits, weight, sign, dscale, then base-10000 digits.
func encodeNumeric(b, text []byte) ([]byte, bool) {
	if string(text) == "NaN" {
		return append(b, 0, 0, 0, 0, 0xc0, 0, 0, 0), true
	}
	s := text
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	intPart, frac := s, []byte(nil)
	for i, c := range s {
		if c == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	if len(intPart) == 0 || len(frac) > 0x3fff || len(intPart) > 131072 {
		return b, false
	}
	for _, part := range [][]byte{intPart, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return b, false
			}
		}
	}
	if len(frac) == 0 && len(s) != len(intPart) {
		return b, false // "12." is not PostgreSQL's output
	}
	// Base-10000 digits: the integer part padded on the left, the
	// fraction on the right, to groups of four.
	pad := (4 - len(intPart)%4) % 4
	groups := make([]int16, 0, (len(intPart)+pad)/4+(len(frac)+3)/4)
	d, k := 0, pad
	for _, c := range intPart {
		d = d*10 + int(c-'0')
		if k++; k == 4 {
			groups = append(groups, int16(d))
			d, k = 0, 0
		}
	}
	weight := len(groups) - 1
	for _, c := range frac {
		d = d*10 + int(c-'0')
		if k++; k == 4 {
			groups = append(groups, int16(d))
			d, k = 0, 0
		}
	}
	if k > 0 {
		for ; k < 4; k++ {
			d *= 10
		}
		groups = append(groups, int16(d))
	}
	// Strip leading and trailing zero groups, as make_result does.
	for len(groups) > 0 && groups[0] == 0 {
		groups = groups[1:]
		weight--
	}
	for len(groups) > 0 && groups[len(groups)-1] == 0 {
		groups = groups[:len(groups)-1]
	}
	sign := uint16(0)
	if len(groups) == 0 {
		weight = 0
	} else if neg {
		sign = 0x4000
	}
	if weight > math.MaxInt16 || weight < math.MinInt16 {
		return b, false
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(groups)))
	b = binary.BigEndian.AppendUint16(b, uint16(int16(weight)))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, uint16(len(frac)))
	for _, g := range groups {
		b = binary.BigEndian.AppendUint16(b, uint16(g))
	}
	return b, true
}

// pgEpochDays is 2000-01-01, PostgreSQL's epoch, in days since 1970-01-01.
const pgEpochDays = 10957

// encodeDate converts "YYYY-MM-DD" (ISO DateStyle, years 1 to 9999) and
// ±infinity to days since 2000-01-01.
func encodeDate(b, text []byte) ([]byte, bool) {
	switch string(text) {
	case "infinity":
		return binary.BigEndian.AppendUint32(b, math.MaxInt32), true
	case "-infinity":
		return binary.BigEndian.AppendUint32(b, 1<<31), true
	}
	days, ok := parseISODate(text)
	if !ok || len(text) != 10 {
		return b, false
	}
	return binary.BigEndian.AppendUint32(b, uint32(int32(days-pgEpochDays))), true
}

// encodeTimestamp converts "YYYY-MM-DD HH:MM:SS[.ffffff]" (ISO DateStyle,
// years 1 to 9999), followed by "+00" for timestamptz (TimeZone UTC), and
// ±infinity, to microseconds since 2000-01-01 00:00:00 (UTC).
func encodeTimestamp(tz bool) binEncoder {
	return func(b, text []byte) ([]byte, bool) {
		switch string(text) {
		case "infinity":
			return binary.BigEndian.AppendUint64(b, math.MaxInt64), true
		case "-infinity":
			return binary.BigEndian.AppendUint64(b, 1<<63), true
		}
		if tz {
			n := len(text)
			if n < 3 || string(text[n-3:]) != "+00" {
				return b, false
			}
			text = text[:n-3]
		}
		days, ok := parseISODate(text)
		if !ok || len(text) < 19 || text[10] != ' ' || text[13] != ':' || text[16] != ':' {
			return b, false
		}
		h, ok1 := digits(text[11:13])
		m, ok2 := digits(text[14:16])
		s, ok3 := digits(text[17:19])
		if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 59 {
			return b, false
		}
		usec := 0
		if frac := text[19:]; len(frac) > 0 {
			if frac[0] != '.' || len(frac) < 2 || len(frac) > 7 {
				return b, false
			}
			f, ok := digits(frac[1:])
			if !ok {
				return b, false
			}
			for range 7 - len(frac) {
				f *= 10
			}
			usec = f
		}
		t := ((int64(days-pgEpochDays)*24+int64(h))*60+int64(m))*60 + int64(s)
		return binary.BigEndian.AppendUint64(b, uint64(t*1_000_000+int64(usec))), true
	}
}

// parseISODate reads "YYYY-MM-DD" at the start of text (a valid date of
// years 1 to 9999) as days since 1970-01-01.
func parseISODate(text []byte) (int, bool) {
	if len(text) < 10 || text[4] != '-' || text[7] != '-' {
		return 0, false
	}
	y, ok1 := digits(text[0:4])
	m, ok2 := digits(text[5:7])
	d, ok3 := digits(text[8:10])
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

func digits(s []byte) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(s) > 0
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the proleptic Gregorian day number of y-m-d relative to
// 1970-01-01 (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// encodeUUID converts the canonical 8-4-4-4-12 lower-case hex form.
func encodeUUID(b, text []byte) ([]byte, bool) {
	if len(text) != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-' {
		return b, false
	}
	var out [16]byte
	j := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		hi, ok1 := hexVal(text[i])
		lo, ok2 := hexVal(text[i+1])
		if !ok1 || !ok2 {
			return b, false
		}
		out[j] = hi<<4 | lo
		j++
		i++
	}
	return append(b, out[:]...), true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
