package capture

import (
	"bytes"
	"fmt"

	"github.com/tenantwal/tenantwal/schemas"
)

// copyRows splits COPY ... TO STDOUT text-format output into rows and
// fields. Data may arrive in arbitrary pieces; Write buffers the last
// partial line.
type copyRows struct {
	ncols int
	row   func([]schemas.Value) error
	rest  []byte
	err   error
}

func (c *copyRows) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n := len(p)
	if len(c.rest) > 0 {
		p = append(c.rest, p...)
		c.rest = nil
	}
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.rest = append([]byte(nil), p...)
			return n, nil
		}
		vals, err := parseCopyLine(p[:i], c.ncols)
		if err == nil {
			err = c.row(vals)
		}
		if err != nil {
			c.err = err
			return 0, err
		}
		p = p[i+1:]
	}
}

// parseCopyLine decodes one text-format COPY row. Each value gets its own
// unescaped copy of the bytes.
func parseCopyLine(line []byte, ncols int) ([]schemas.Value, error) {
	out := make([]schemas.Value, 0, ncols)
	arena := make([]byte, 0, len(line))
	for {
		i := bytes.IndexByte(line, '\t')
		field := line
		if i >= 0 {
			field = line[:i]
		}
		if len(field) == 2 && field[0] == '\\' && field[1] == 'N' {
			out = append(out, schemas.Value{Kind: schemas.ValueNull})
		} else {
			start := len(arena)
			var err error
			arena, err = unescapeCopy(arena, field)
			if err != nil {
				return nil, err
			}
			out = append(out, schemas.Value{Kind: schemas.ValueText, Data: arena[start:len(arena):len(arena)]})
		}
		if i < 0 {
			break
		}
		line = line[i+1:]
	}
	if len(out) != ncols {
		return nil, fmt.Errorf("COPY row has %d fields, want %d", len(out), ncols)
	}
	return out, nil
}

func unescapeCopy(dst, s []byte) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, fmt.Errorf("COPY field ends in a lone backslash")
		}
		switch c = s[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(s) && isHex(s[i+1]) {
				i++
				v = v*16 + hexVal(s[i])
				n++
			}
			if n == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; n++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			dst = append(dst, byte(v))
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}
