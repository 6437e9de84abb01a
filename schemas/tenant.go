package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
)

// TenantID is an opaque tenant identity: the text of the tenant column (pool),
// or the tenant part of a schema name (bridge). Any non-empty byte string is
// valid; it is escaped before it appears in an object key and never appears
// in a NATS subject (subjects carry the partition only).
type TenantID string

// MaxTenantIDLen bounds a tenant id so its escaped form fits an S3 key.
const MaxTenantIDLen = 256

// SharedTenant is the reserved pseudo-tenant under which pool tables without a
// tenant column are archived when shared tables are kept.
const SharedTenant TenantID = "_shared"

// Validate reports whether t can be archived.
func (t TenantID) Validate() error {
	switch {
	case t == "":
		return errors.New("tenant id is empty: a row's tenant column is NULL or empty; make the column NOT NULL or exclude the table")
	case len(t) > MaxTenantIDLen:
		return fmt.Errorf("tenant id is %d bytes long, more than the %d allowed", len(t), MaxTenantIDLen)
	}
	return nil
}

// Partition maps t to one of n partitions (FNV-1a 64 of the id's bytes).
func Partition(t TenantID, n int) int {
	h := fnv.New64a()
	h.Write([]byte(t))
	return int(h.Sum64() % uint64(n))
}

// Hash is a short stable digest of t, used where an id must not leak
// (message ids, audit records). It is not a secret.
func (t TenantID) Hash() string {
	s := sha256.Sum256([]byte(t))
	return hex.EncodeToString(s[:8])
}

// EscapeName escapes an arbitrary byte string into the alphabet
// [A-Za-z0-9_-] plus '%': every other byte becomes %XX (upper-case hex).
// The mapping is injective and reversible, never yields "." or "..", and
// keeps distinct case distinct, so two tenants can never share a prefix.
func EscapeName(s string) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}

// UnescapeName reverses EscapeName. It rejects any string EscapeName cannot
// produce, so that the mapping stays one to one.
func UnescapeName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-':
			b.WriteByte(c)
		case c == '%' && i+2 < len(s):
			v, ok1 := unhex(s[i+1])
			w, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("unescape %q: bad escape at byte %d", s, i)
			}
			d := v<<4 | w
			if d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z' || d >= '0' && d <= '9' || d == '_' || d == '-' {
				return "", fmt.Errorf("unescape %q: byte %d escapes a plain character", s, i)
			}
			b.WriteByte(d)
			i += 2
		default:
			return "", fmt.Errorf("unescape %q: unexpected byte %q at %d", s, c, i)
		}
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
