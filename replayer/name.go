package replayer

import (
	"fmt"
	"strings"

	"github.com/tenantwal/tenantwal/schemas"
)

// maxIdentLen is PostgreSQL's NAMEDATALEN - 1.
const maxIdentLen = 63

// DefaultSchemaName names the schema a side-by-side restore creates:
// "tw_<tenant>_<point>", where <point> is "20261123t101500z" (with
// "_<fraction>" before the z when the time has one) or "lsn_16_b374d848".
// The result uses only [a-z0-9_] and fits in 63 bytes. <tenant> is the
// tenant id itself when it is made of [a-z0-9] only and short enough;
// otherwise it is a sanitized prefix followed by "_" and a hash of the id,
// so two tenants never get the same name.
func DefaultSchemaName(t schemas.TenantID, target Target) string {
	point := pointName(target)
	room := maxIdentLen - len("tw_") - len("_") - len(point)
	id := string(t)
	if !plainTenant(id) || len(id) > room {
		hash := t.Hash()[:8]
		san := sanitize(id)
		if keep := room - len(hash) - 1; len(san) > keep {
			san = strings.TrimRight(san[:keep], "_")
		}
		if san == "" {
			id = hash
		} else {
			id = san + "_" + hash
		}
	}
	return "tw_" + id + "_" + point
}

func pointName(target Target) string {
	if target.IsLSN() {
		return fmt.Sprintf("lsn_%x_%x", uint32(target.LSN>>32), uint32(target.LSN))
	}
	t := target.Time.UTC()
	s := t.Format("20060102t150405")
	if ns := t.Nanosecond(); ns != 0 {
		s += "_" + strings.TrimRight(fmt.Sprintf("%09d", ns), "0")
	}
	return s + "z"
}

// plainTenant reports whether id can appear in a schema name as it is
// without being confused with a sanitized one (which always holds a "_").
func plainTenant(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// sanitize lowercases s and turns every run of bytes outside [a-z0-9] into
// one "_", trimming it at both ends.
func sanitize(s string) string {
	var b strings.Builder
	under := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
			under = false
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	return strings.TrimRight(b.String(), "_")
}
