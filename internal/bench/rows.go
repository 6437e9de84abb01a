package bench

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tenantwal/tenantwal/internal/bench/vocab"
)

// The generated rows look like a shop's orders (issue #4: "rows of ~150-300
// bytes mixing text, numeric, jsonb, timestamptz"): a status, a customer's
// name and e-mail address, an amount, a jsonb of SKU, quantity, channel and
// shipping city, an optional free-text note of English words, and two
// timestamps with microseconds. Text is drawn from small vocabularies the
// way real text repeats itself, never random hex, which no compressor can
// shrink and which would make every size comparison a tie.
//
// Columns that must agree with each other (the customer's name and address)
// derive from hashint8 of the row id and a per-statement seed instead of
// random(), which PostgreSQL would evaluate once per use.

// sqlArray is a PostgreSQL text[] literal of ws.
func sqlArray(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = quoteLiteral(w)
	}
	return "ARRAY[" + strings.Join(q, ",") + "]"
}

// pickRandom is an SQL expression choosing one of ws at random for each
// evaluation.
func pickRandom(ws []string) string {
	return fmt.Sprintf("(%s)[1 + floor(random() * %d)::int]", sqlArray(ws), len(ws))
}

// pickHash is an SQL expression choosing one of ws by hashing the bigint
// expression x: the same x always picks the same word.
func pickHash(ws []string, x string) string {
	return fmt.Sprintf("(%s)[1 + (hashint8(%s) & 2147483647) %% %d]", sqlArray(ws), x, len(ws))
}

// rowExpr is the SELECT list generating one order row from g, the id, in
// orderColumns order, with "{seed}" to replace by a per-statement seed
// (rowSelect).
var rowExpr = strings.Join([]string{
	"g",
	pickRandom(vocab.Statuses),
	pickHash(vocab.FirstNames, "g + {seed}") + " || ' ' || " + pickHash(vocab.LastNames, "g + {seed} + 1"),
	"lower(" + pickHash(vocab.FirstNames, "g + {seed}") + " || '.' || " + pickHash(vocab.LastNames, "g + {seed} + 1") +
		") || CASE WHEN g % 3 = 0 THEN (g % 97)::text ELSE '' END || '@' || " + pickHash(vocab.Domains, "g + {seed} + 2"),
	"round((4.99 + random() ^ 3 * 900)::numeric, 2)",
	"jsonb_build_object('sku', 'SKU-' || lpad(((hashint8(g + {seed} + 3) & 2147483647) % 5000)::text, 5, '0'), " +
		"'qty', 1 + floor(random() ^ 4 * 6)::int, 'channel', " + pickRandom(vocab.Channels) + ", " +
		"'ship', jsonb_build_object('city', " + pickHash(vocab.Cities, "g + {seed} + 4") + ", 'country', " + pickHash(vocab.Countries, "g + {seed} + 4") + "), " +
		"'gift', random() < 0.1)",
	"CASE WHEN random() < 0.4 THEN NULL ELSE initcap(array_to_string(ARRAY(SELECT " + pickRandom(vocab.NoteWords) +
		" FROM generate_series(1, 3 + (g + {seed}) % 10)), ' ')) END",
	"now() - random() * interval '30 days'",
	"now()",
}, ",\n")

// rowSelect is rowExpr with seed in place.
func rowSelect(seed int64) string {
	return strings.ReplaceAll(rowExpr, "{seed}", strconv.FormatInt(seed, 10))
}
