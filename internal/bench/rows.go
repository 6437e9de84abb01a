package bench

import (
	"fmt"
	"strconv"
	"strings"
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

var (
	firstNames = words(`James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony
Sandra Mark Margaret Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol
Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Ronald Rebecca Jason Sharon Edward Laura Jeffrey
Cynthia Ryan Amy Jacob Kathleen Gary Angela Nicholas Shirley Eric Brenda Jonathan Emma Stephen Anna Larry
Pamela Justin Nicole Scott Samantha Brandon Katherine Benjamin Christine Samuel Helen Gregory Debra Alexander
Rachel Patrick Carolyn Frank Janet Raymond Maria Jack Olivia Dennis Heather Jerry Diane Tyler Julie Aaron
Joyce Jose Victoria Adam Ruth Nathan Virginia Henry Lauren Zachary Kelly Douglas Christina Peter Joan Kyle
Evelyn Noah Judith Ethan Andrea Jeremy Hannah Walter Megan Christian Cheryl Keith Jacqueline Roger Martha
Terry Madison Austin Teresa Sean Gloria Gerald Sara Carl Janice Harold Ann Dylan Kathryn Arthur Abigail Lawrence
Sophia Jordan Frances Jesse Jean Bryan Alice Billy Judy Bruce Isabella Gabriel Julia Joe Grace Logan Amber`)
	lastNames = words(`Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez
Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera
Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart
Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox
Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders
Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes
Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno
West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison`)
	domains = words(`gmail.com yahoo.com outlook.com hotmail.com icloud.com proton.me aol.com gmx.de
web.de orange.fr free.fr libero.it mail.ru qq.com naver.com example.com acme.io contoso.com fabrikam.net`)
	cities = words(`London Paris Berlin Madrid Rome Vienna Amsterdam Brussels Lisbon Dublin Prague Warsaw
Stockholm Oslo Copenhagen Helsinki Zurich Munich Hamburg Lyon Milan Barcelona Seville Porto Krakow Budapest
Athens Toronto Montreal Chicago Boston Seattle Austin Denver Portland Atlanta Miami Dallas Houston Phoenix Sydney
Melbourne Auckland Tokyo Osaka Seoul Singapore Bangalore Mumbai Delhi Dubai Nairobi Lagos Cairo Johannesburg`)
	countries = words(`GB FR DE ES IT AT NL BE PT IE CZ PL SE NO DK FI CH US CA AU NZ JP KR SG IN AE KE NG EG ZA`)
	channels  = words(`web web web ios ios android android store phone marketplace`)
	statuses  = words(`new paid paid shipped shipped shipped delivered delivered delivered cancelled refunded`)
	noteWords = words(`please leave the parcel at front door back desk reception with neighbour call before
delivery ring bell twice do not knock gift wrap it a birthday present for my mother father sister brother
friend deliver after pm only weekdays morning evening fragile handle care box was damaged last time
replace item missing size colour wrong customer requested refund exchange express shipping upgrade invoice
company name vat number on order include receipt no plastic packaging thanks thank you so much urgent
needed by friday monday next week apartment floor code gate is open dog in garden side entrance`)
)

func words(s string) []string { return strings.Fields(s) }

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
	pickRandom(statuses),
	pickHash(firstNames, "g + {seed}") + " || ' ' || " + pickHash(lastNames, "g + {seed} + 1"),
	"lower(" + pickHash(firstNames, "g + {seed}") + " || '.' || " + pickHash(lastNames, "g + {seed} + 1") +
		") || CASE WHEN g % 3 = 0 THEN (g % 97)::text ELSE '' END || '@' || " + pickHash(domains, "g + {seed} + 2"),
	"round((4.99 + random() ^ 3 * 900)::numeric, 2)",
	"jsonb_build_object('sku', 'SKU-' || lpad(((hashint8(g + {seed} + 3) & 2147483647) % 5000)::text, 5, '0'), " +
		"'qty', 1 + floor(random() ^ 4 * 6)::int, 'channel', " + pickRandom(channels) + ", " +
		"'ship', jsonb_build_object('city', " + pickHash(cities, "g + {seed} + 4") + ", 'country', " + pickHash(countries, "g + {seed} + 4") + "), " +
		"'gift', random() < 0.1)",
	"CASE WHEN random() < 0.4 THEN NULL ELSE initcap(array_to_string(ARRAY(SELECT " + pickRandom(noteWords) +
		" FROM generate_series(1, 3 + (g + {seed}) % 10)), ' ')) END",
	"now() - random() * interval '30 days'",
	"now()",
}, ",\n")

// rowSelect is rowExpr with seed in place.
func rowSelect(seed int64) string {
	return strings.ReplaceAll(rowExpr, "{seed}", strconv.FormatInt(seed, 10))
}
