package schemas

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a PostgreSQL write-ahead log position.
type LSN uint64

// String formats the LSN the way PostgreSQL does: "16/B374D848".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// MarshalText writes the LSN as "X/Y", so archive JSON reads like psql.
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalJSON reads an LSN written as "X/Y" or as a plain number.
func (l *LSN) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		v, err := ParseLSN(s[1 : len(s)-1])
		*l = v
		return err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("parse LSN %s: want \"X/Y\" or a number", s)
	}
	*l = LSN(v)
	return nil
}

// ParseLSN parses the "X/Y" form printed by PostgreSQL and by String.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("parse LSN %q: want the form X/Y in hexadecimal, as pg_current_wal_lsn() prints it", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: high half: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: low half: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// Pos is the identity of one change: the commit LSN of its transaction and
// its ordinal inside that transaction. Positions are totally ordered and are
// what the archiver deduplicates on.
type Pos struct {
	LSN LSN    `json:"lsn"`
	Seq uint32 `json:"seq"`
}

// Less reports whether p sorts before q.
func (p Pos) Less(q Pos) bool {
	return p.LSN < q.LSN || (p.LSN == q.LSN && p.Seq < q.Seq)
}

func (p Pos) String() string { return fmt.Sprintf("%s#%d", p.LSN, p.Seq) }
