// Package vocab holds the small vocabularies the benchmark's order rows are
// drawn from (names, e-mail domains, cities, notes), shared by the SQL that
// generates them and by tests that build the same rows in Go: real text
// repeats itself, random hex would make every size comparison a tie.
package vocab

import "strings"

// The vocabularies; entries may repeat to weight them.
var (
	FirstNames = strings.Fields(`James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara
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
	LastNames = strings.Fields(`Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez
Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera
Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart
Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox
Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders
Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes
Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno
West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison`)
	Domains = strings.Fields(`gmail.com yahoo.com outlook.com hotmail.com icloud.com proton.me aol.com gmx.de
web.de orange.fr free.fr libero.it mail.ru qq.com naver.com example.com acme.io contoso.com fabrikam.net`)
	Cities = strings.Fields(`London Paris Berlin Madrid Rome Vienna Amsterdam Brussels Lisbon Dublin Prague Warsaw
Stockholm Oslo Copenhagen Helsinki Zurich Munich Hamburg Lyon Milan Barcelona Seville Porto Krakow Budapest
Athens Toronto Montreal Chicago Boston Seattle Austin Denver Portland Atlanta Miami Dallas Houston Phoenix Sydney
Melbourne Auckland Tokyo Osaka Seoul Singapore Bangalore Mumbai Delhi Dubai Nairobi Lagos Cairo Johannesburg`)
	Countries = strings.Fields(`GB FR DE ES IT AT NL BE PT IE CZ PL SE NO DK FI CH US CA AU NZ JP KR SG IN AE KE NG EG ZA`)
	Channels  = strings.Fields(`web web web ios ios android android store phone marketplace`)
	Statuses  = strings.Fields(`new paid paid shipped shipped shipped delivered delivered delivered cancelled refunded`)
	NoteWords = strings.Fields(`please leave the parcel at front door back desk reception with neighbour call before
delivery ring bell twice do not knock gift wrap it a birthday present for my mother father sister brother
friend deliver after pm only weekdays morning evening fragile handle care box was damaged last time
replace item missing size colour wrong customer requested refund exchange express shipping upgrade invoice
company name vat number on order include receipt no plastic packaging thanks thank you so much urgent
needed by friday monday next week apartment floor code gate is open dog in garden side entrance`)
)
