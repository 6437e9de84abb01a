package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/capture/pgoutput"
	"github.com/tenantwal/tenantwal/schemas"
)

// DDL recording. pgoutput sends a table's new shape only with its next
// change and says nothing of DROP TABLE, so without help the archive learns
// of a DDL late (a restore point between the DDL and the table's next
// change shows the previous shape) or never (a dropped table comes back in
// restores). Where the role may create event triggers, `tenantwal init`
// installs one on ddl_command_end and sql_drop that writes a transactional
// logical message (prefix ddlMessagePrefix) naming the objects the command
// touched. It arrives in the transaction's stream at the command's place;
// capture then marks the tables' new versions (or their drop) for every
// tenant at the end of that transaction, and records the command's text
// with the version.

// ddlMessagePrefix is the prefix of the event trigger's logical messages.
const ddlMessagePrefix = "tenantwal.ddl"

// ddlTriggerNames are the event triggers Init installs.
var ddlTriggerNames = []string{"tenantwal_ddl_end", "tenantwal_sql_drop"}

// ddlFunctionSQL creates the event trigger function. It does not fail the
// user's DDL: an error reading the objects becomes a warning, and the DDL
// is then learnt from the table's next change as without the trigger.
const ddlFunctionSQL = `
CREATE SCHEMA IF NOT EXISTS tenantwal;
COMMENT ON SCHEMA tenantwal IS 'tenantwal: records DDL for the per-tenant archive (event triggers tenantwal_ddl_end, tenantwal_sql_drop)';
CREATE OR REPLACE FUNCTION tenantwal.record_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
	objs jsonb;
	tabs jsonb;
	msg text;
BEGIN
	IF current_setting('` + schemas.RestoreSetting + `', true) = 'on' THEN
		RETURN; -- a tenantwal restore: its tables are never archived
	END IF;
	BEGIN
		IF tg_event = 'sql_drop' THEN
			-- A dropped table's publications: those that listed it (their
			-- entries are dropped with it), FOR ALL TABLES ones, and those of
			-- its schema (also when the schema is dropped with it).
			SELECT jsonb_agg(jsonb_build_object('class', o.classid::regclass::text, 'objid', o.objid::bigint, 'type', o.object_type,
				'schema', o.schema_name, 'name', o.object_name,
				'pubs', CASE WHEN o.object_type = 'table' THEN (SELECT coalesce(jsonb_agg(DISTINCT x.pub), '[]') FROM (
					SELECT d.address_args[1] FROM pg_event_trigger_dropped_objects() d
						WHERE d.object_type = 'publication relation' AND d.address_names = ARRAY[o.schema_name, o.object_name]
					UNION SELECT d.address_args[1] FROM pg_event_trigger_dropped_objects() d
						WHERE d.object_type = 'publication namespace' AND d.address_names = ARRAY[o.schema_name]
					UNION SELECT p.pubname::text FROM pg_publication p WHERE p.puballtables
					UNION SELECT p.pubname::text FROM pg_publication p JOIN pg_publication_namespace pn ON pn.pnpubid = p.oid
						JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE n.nspname = o.schema_name) AS x(pub)) END))
			INTO objs FROM pg_event_trigger_dropped_objects() o
			WHERE o.object_type IN ('table', 'index') AND NOT o.is_temporary;
		ELSE
			-- The tables as pgoutput would describe them now, at the command:
			-- capture may decode this much later, when the catalog has moved on.
			SELECT jsonb_agg(jsonb_build_object('relid', c.oid::bigint, 'schema', n.nspname, 'name', c.relname,
				'replident', c.relreplident::text, 'catalog', tenantwal.describe_table(c.oid),
				'pubs', (SELECT jsonb_agg(p.pubname) FROM pg_publication p
					WHERE (p.puballtables
						OR EXISTS (SELECT FROM pg_publication_rel pr WHERE pr.prpubid = p.oid AND pr.prrelid IN (SELECT relid FROM pg_partition_ancestors(c.oid)))
						OR EXISTS (SELECT FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid AND pn.pnnspid = c.relnamespace))
					AND NOT (p.pubviaroot AND c.relispartition)),
				'columns', (SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'type', a.atttypid::bigint, 'typmod', a.atttypmod,
						'num', a.attnum, 'missing', CASE WHEN a.atthasmissing THEN array_to_string(a.attmissingval, '') END,
						'key', c.relreplident = 'f' OR a.attnum = ANY (coalesce((SELECT i.indkey::int2[] FROM pg_index i
							WHERE i.indrelid = c.oid AND CASE c.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident ELSE false END
							LIMIT 1), '{}'))) ORDER BY a.attnum)
					FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')))
			INTO tabs FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND c.oid IN (
				SELECT CASE WHEN x.relkind IN ('i', 'I') THEN (SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = x.oid) ELSE x.oid END
				FROM pg_event_trigger_ddl_commands() d JOIN pg_class x ON d.classid = 'pg_class'::regclass AND x.oid = d.objid);
			SELECT jsonb_agg(jsonb_build_object('class', 'pg_type', 'objid', objid::bigint, 'type', object_type, 'schema', schema_name))
			INTO objs FROM pg_event_trigger_ddl_commands() WHERE classid = 'pg_type'::regclass;
		END IF;
		msg := jsonb_build_object('event', tg_event, 'tag', tg_tag, 'query', current_query(), 'objects', objs, 'tables', tabs,
			'backslash_quote', current_setting('standard_conforming_strings') = 'off')::text;
	EXCEPTION WHEN OTHERS THEN
		RAISE WARNING 'tenantwal: DDL not recorded for the archive (restores learn it from the table''s next change): %', SQLERRM;
		RETURN;
	END;
	-- Outside the block above (a subtransaction): a message that is the
	-- first record of its subtransaction is decoded after the transaction's
	-- next change. Here it follows the command's own catalog changes
	-- (TestDDLTriggerMessages checks the order under a user's SAVEPOINT).
	IF objs IS NOT NULL OR tabs IS NOT NULL THEN
		PERFORM pg_logical_emit_message(true, 'tenantwal.ddl', msg);
	END IF;
END
$fn$`

// ensureDDLTrigger installs the event triggers (and refreshes their
// function) when the role may; otherwise it says what is lost and how to
// get it. It never fails Init: capture works without the trigger.
func ensureDDLTrigger(ctx context.Context, conn *pgx.Conn, log *slog.Logger) error {
	var super bool
	if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return fmt.Errorf("read the role's attributes: %w", err)
	}
	if !super {
		log.Warn("not a superuser: DDL event trigger not installed; table changes of shape are archived with the table's next change and DROP TABLE is not recorded",
			slog.String("fix", "run `tenantwal init` once as a superuser"))
		return nil
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS tenantwal"); err != nil {
		return fmt.Errorf("create schema tenantwal: %w", err)
	}
	// The trigger runs its functions as a superuser: whoever owns their
	// schema could drop and replace them, and so act as a superuser.
	var owner string
	var ownerSuper bool
	if err := tx.QueryRow(ctx, `SELECT r.rolname, r.rolsuper FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
		WHERE n.nspname = 'tenantwal'`).Scan(&owner, &ownerSuper); err != nil {
		return fmt.Errorf("read the owner of schema tenantwal: %w", err)
	}
	if !ownerSuper {
		return fmt.Errorf("schema tenantwal already exists and is owned by role %q, who is not a superuser: it could replace the functions "+
			"the DDL event trigger runs as a superuser. Fix: if the schema is tenantwal's, `ALTER SCHEMA tenantwal OWNER TO postgres` "+
			"(or another superuser); if it is another application's (or a tenant's), rename it, or run init with --no-ddl-trigger", owner)
	}
	if _, err := tx.Exec(ctx, describeTableSQL()); err != nil {
		return fmt.Errorf("create the DDL event trigger's function tenantwal.describe_table: %w", err)
	}
	if _, err := tx.Exec(ctx, ddlFunctionSQL); err != nil {
		return fmt.Errorf("create the DDL event trigger function tenantwal.record_ddl: %w", err)
	}
	// A replaced function keeps its owner; nobody else may call them.
	for _, fn := range []string{"tenantwal.describe_table(oid)", "tenantwal.record_ddl()"} {
		if _, err := tx.Exec(ctx, "ALTER FUNCTION "+fn+" OWNER TO CURRENT_USER; REVOKE ALL ON FUNCTION "+fn+" FROM PUBLIC"); err != nil {
			return fmt.Errorf("secure function %s: %w", fn, err)
		}
	}
	for i, event := range []string{"ddl_command_end", "sql_drop"} {
		name := ddlTriggerNames[i]
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = $1)`, name).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE EVENT TRIGGER %s ON %s EXECUTE FUNCTION tenantwal.record_ddl()", name, event)); err != nil {
				return fmt.Errorf("create event trigger %s: %w", name, err)
			}
		}
	}
	return tx.Commit(ctx)
}

// ddlMessage is the event trigger's message.
type ddlMessage struct {
	Event string `json:"event"` // ddl_command_end or sql_drop
	Tag   string `json:"tag"`   // the command tag: ALTER TABLE, DROP TABLE, ...
	Query string `json:"query"` // current_query(): the client's query string
	// BackslashQuote is set when standard_conforming_strings was off: a
	// backslash in a plain '' string then escapes, which splitStatements
	// does not follow.
	BackslashQuote bool `json:"backslash_quote"`
	// Objects are, for sql_drop, the tables and indexes dropped; for
	// ddl_command_end, the types the command created or altered.
	Objects []ddlObject `json:"objects"`
	// Tables are, for ddl_command_end, the tables the command touched
	// (directly or through an index), described at the command.
	Tables []ddlTable `json:"tables"`
}

// ddlTable is a table as pgoutput would describe it at the DDL command,
// with the publications that publish it.
type ddlTable struct {
	RelID     uint32   `json:"relid"`
	Schema    string   `json:"schema"`
	Name      string   `json:"name"`
	ReplIdent string   `json:"replident"`
	Pubs      []string `json:"pubs"`
	Columns   []struct {
		Name    string  `json:"name"`
		Type    uint32  `json:"type"`
		TypMod  int32   `json:"typmod"`
		Key     bool    `json:"key"`
		Num     int16   `json:"num"`
		Missing *string `json:"missing"` // attmissingval's element, as columnFactsSQL reads it
	} `json:"columns"`
	// Catalog holds the rows of describe's catalog queries at the command
	// (catalog_record.go); absent from a trigger installed before it was.
	Catalog recordedCatalog `json:"catalog"`
}

// facts are the column facts of the command's moment.
func (t *ddlTable) facts() map[string]columnFact {
	out := make(map[string]columnFact, len(t.Columns))
	for _, c := range t.Columns {
		out[c.Name] = columnFact{num: c.Num, typeOID: c.Type, missing: c.Missing}
	}
	return out
}

// relation is t as a Relation message.
func (t *ddlTable) relation() *pgoutput.Relation {
	m := &pgoutput.Relation{RelID: t.RelID, Namespace: t.Schema, Name: t.Name}
	if t.ReplIdent != "" {
		m.ReplicaIdentity = t.ReplIdent[0]
	}
	for _, c := range t.Columns {
		rc := pgoutput.RelationColumn{Name: c.Name, TypeOID: c.Type, TypeMod: c.TypMod}
		if c.Key {
			rc.Flags = 1
		}
		m.Columns = append(m.Columns, rc)
	}
	return m
}

type ddlObject struct {
	Class  string `json:"class"` // the catalog: pg_class, pg_type
	ObjID  uint32 `json:"objid"`
	Type   string `json:"type"` // object_type: table, index, type, ...
	Schema string `json:"schema"`
	Name   string `json:"name"` // sql_drop only
	// Pubs are, for a dropped table, the publications that published it
	// (nil from a trigger function older than this field: unknown).
	Pubs []string `json:"pubs"`
}

// ddl handles one event trigger message of the transaction being decoded.
func (p *processor) ddl(ctx context.Context, m *pgoutput.LogicalMessage) error {
	if !p.inTxn || !m.Transactional() {
		return nil
	}
	var msg ddlMessage
	if err := json.Unmarshal(m.Content, &msg); err != nil {
		p.log.Warn("ignoring a malformed DDL message (another writer of the tenantwal.ddl prefix?)", slog.String("lsn", p.lsn.String()), slog.Any("error", err))
		return nil
	}
	if err := p.waitVisible(ctx); err != nil {
		return err
	}
	text := ddlText(msg.Tag, msg.Query)
	if msg.BackslashQuote && text != "" {
		text = msg.Tag + " (text not recorded: standard_conforming_strings was off)"
	}
	if msg.Event == "sql_drop" {
		var indexed []uint32
		for _, o := range msg.Objects {
			switch {
			case o.Class != "pg_class":
			case o.Type == "table":
				if err := p.dropTable(ctx, o, text); err != nil {
					return err
				}
			case o.Type == "index":
				indexed = append(indexed, p.tablesWithIndex(o.Schema, o.Name)...)
			}
		}
		return p.ddlKnown(ctx, indexed, text)
	}
	for i := range msg.Tables {
		if t := &msg.Tables[i]; slices.Contains(t.Pubs, p.publication) {
			if err := p.ddlRelation(ctx, t.relation(), t.facts(), t.Catalog, text); err != nil {
				return err
			}
		}
	}
	// A type's change (enum labels, a domain) changes the versions of
	// the tables using it, not their columns.
	relids, err := p.ddlTables(ctx, msg.Objects)
	if err != nil {
		return err
	}
	return p.ddlKnown(ctx, relids, text)
}

// ddlKnown marks the new versions of tables whose columns a DDL command
// did not change (a dropped index, a type's labels), described with the
// columns capture knows them by.
func (p *processor) ddlKnown(ctx context.Context, relids []uint32, text string) error {
	for _, relid := range relids {
		m, err := p.knownRelation(ctx, relid)
		if err != nil {
			return err
		}
		if m == nil {
			continue // gone
		}
		if err := p.ddlRelation(ctx, m, nil, nil, text); err != nil {
			return err
		}
	}
	return nil
}

// knownRelation describes the published table relid as the last Relation
// or DDL message did, or from the catalog when capture has not seen it
// since it started; nil when it is gone.
func (p *processor) knownRelation(ctx context.Context, relid uint32) (*pgoutput.Relation, error) {
	ts := (*schemas.TableSchema)(nil)
	if r := p.marked[relid]; r != nil {
		ts = r.ts
	} else if r := p.rels[relid]; r != nil {
		ts = r.ts
	} else if p.snap != nil && p.snap.tables[relid] != nil {
		ts = p.snap.tables[relid]
	} else {
		cat, err := loadTable(ctx, p.cat, relid)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil // dropped later in the stream; its sql_drop message follows
		}
		if err != nil {
			return nil, err
		}
		ts = cat
	}
	m := &pgoutput.Relation{RelID: relid, Namespace: ts.Schema, Name: ts.Name, ReplicaIdentity: ts.ReplicaIdentity}
	for _, c := range ts.Columns {
		rc := pgoutput.RelationColumn{Name: c.Name, TypeOID: c.TypeOID, TypeMod: c.TypeMod}
		if c.Key {
			rc.Flags = 1
		}
		m.Columns = append(m.Columns, rc)
	}
	return m, nil
}

// tablesWithIndex returns the tables capture knows (seen since it started)
// whose version lists an index of that name: a dropped index's table is
// gone from the catalog by the time sql_drop reports it.
func (p *processor) tablesWithIndex(schema, name string) []uint32 {
	var out []uint32
	has := func(ts *schemas.TableSchema) bool {
		return ts.Schema == schema && slices.ContainsFunc(ts.Indexes, func(d schemas.IndexDef) bool { return d.Name == name })
	}
	seen := map[uint32]bool{}
	for _, rels := range []map[uint32]*relation{p.rels, p.marked} {
		for relid, r := range rels {
			if has(r.ts) {
				seen[relid] = true
			}
		}
	}
	if p.snap != nil {
		for relid, ts := range p.snap.tables {
			if has(ts) {
				seen[relid] = true
			}
		}
	}
	for relid := range seen {
		out = append(out, relid)
	}
	slices.Sort(out)
	return out
}

// ddlTablesSQL maps the objects a DDL command touched to the published
// tables whose archived version it may change: a table itself, an index's
// table, and the tables with a column of a type (or of its array or a
// domain over it).
const ddlTablesSQL = `
WITH o(class, objid) AS (SELECT * FROM unnest($1::text[], $2::oid[])),
rel(oid) AS (
	SELECT CASE WHEN c.relkind IN ('i', 'I') THEN (SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = c.oid) ELSE c.oid END
	FROM o JOIN pg_class c ON o.class = 'pg_class' AND c.oid = o.objid
	UNION
	SELECT a.attrelid
	FROM o JOIN pg_type t ON o.class = 'pg_type' AND (t.oid = o.objid OR t.typelem = o.objid OR t.typbasetype = o.objid)
	JOIN pg_attribute a ON a.atttypid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
)
SELECT DISTINCT c.oid FROM rel
JOIN pg_class c ON c.oid = rel.oid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_publication_tables pt ON pt.pubname = $3 AND pt.schemaname = n.nspname AND pt.tablename = c.relname
ORDER BY 1`

func (p *processor) ddlTables(ctx context.Context, objs []ddlObject) ([]uint32, error) {
	var classes []string
	var ids []uint32
	for _, o := range objs {
		classes, ids = append(classes, o.Class), append(ids, o.ObjID)
	}
	rows, err := p.cat.Query(ctx, ddlTablesSQL, classes, ids, p.publication)
	if err != nil {
		return nil, fmt.Errorf("tables of the DDL at %s: %w", p.lsn, err)
	}
	relids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, fmt.Errorf("tables of the DDL at %s: %w", p.lsn, err)
	}
	return relids, nil
}

// ddlRelation marks the version of the published table m describes (as
// pgoutput would, at the DDL command) when it differs from the version
// last archived or marked; describe adds the catalog's facts. The relation
// pgoutput described last stays the one changes are decoded with: the
// next change after a DDL that alters columns comes with its own Relation
// message, which then needs no marker.
func (p *processor) ddlRelation(ctx context.Context, m *pgoutput.Relation, at map[string]columnFact, cat recordedCatalog, text string) error {
	relid := m.RelID
	prev := p.rels[relid]
	var q querier = p.cat
	if len(cat) > 0 {
		q = cat
	}
	rel, facts, err := p.describe(ctx, q, m, prev, at)
	if err != nil || rel.route.Excluded {
		return err
	}
	if len(cat) > 0 {
		rel.recorded, rel.at = cat, at
	}
	var prevVersion string
	var prevTS *schemas.TableSchema
	switch {
	case p.marked[relid] != nil:
		prevTS = p.marked[relid].ts
		prevVersion = prevTS.Version
	case prev != nil:
		prevTS, prevVersion = prev.ts, prev.ts.Version
	case p.snap != nil && p.snap.tables[relid] != nil:
		prevTS = p.snap.tables[relid]
		prevVersion = prevTS.Version
	}
	if prevVersion == rel.ts.Version {
		return nil
	}
	if text != "" {
		rel.ts.DDL = append(rel.ts.DDL, text)
	}
	p.marked[relid] = rel
	p.log.Info("DDL recorded", slog.String("table", rel.ts.QualifiedName()), slog.String("version", rel.ts.Version), slog.String("lsn", p.lsn.String()))
	if prevTS == nil {
		// New to this run (created, or not changed since capture
		// started): mark it, the archive may not know this version.
		p.deferMarker(rel)
		return nil
	}
	p.newVersion(rel, prevTS, facts)
	return nil
}

// dropTable marks a dropped table's drop for every tenant that can have
// rows in it, at the command's place in the transaction, with its last known
// version. A table capture has not seen since it started is marked with a
// version that has only its name (and the tenant column, for routing): a
// restore does not create a table from markers alone.
func (p *processor) dropTable(ctx context.Context, o ddlObject, text string) error {
	rel := p.marked[o.ObjID] // the newest version archived
	if rel == nil {
		rel = p.rels[o.ObjID]
	}
	if rel == nil && p.snap != nil && p.snap.tables[o.ObjID] != nil {
		ts := p.snap.tables[o.ObjID]
		rel = &relation{ts: ts, route: p.router.Route(ts)}
	}
	if rel == nil && o.Pubs != nil && !slices.Contains(o.Pubs, p.publication) {
		return nil // never published: no tenant has its rows
	}
	if rel == nil {
		ts := &schemas.TableSchema{RelID: o.ObjID, Schema: o.Schema, Name: o.Name, Generation: o.ObjID,
			RestoreTarget: p.restoreSchemas[o.Schema]}
		ts.Columns = []schemas.Column{{Name: p.router.TenantColumnFor(o.Schema, o.Name), TypeOID: 25, TypeMod: -1, TypeName: "text"}}
		rt := p.router.Route(ts)
		ts.TenantColumn = rt.ColumnName
		if text != "" {
			ts.DDL = []string{text}
		}
		ts.ComputeVersion()
		rel = &relation{ts: ts, route: rt}
	}
	delete(p.rels, o.ObjID)
	delete(p.marked, o.ObjID)
	if rel.route.Excluded {
		return nil
	}
	p.log.Info("table dropped", slog.String("table", rel.ts.QualifiedName()), slog.String("lsn", p.lsn.String()))
	// At the command's place, not at the end of the transaction: rows the
	// transaction then writes to a table created under the same name come
	// after the drop. The message has a fixed place in the WAL, so the
	// position is the same when the transaction is decoded again.
	p.seq++
	return p.markTables(ctx, rel, schemas.OpDrop, 0, p.seq)
}

// ddlText is what the archive records of a DDL command: its tag and the
// client's query string when that is the command alone. A query string
// holding several statements, or a command that carries rows (CREATE
// TABLE AS, SELECT INTO), may hold other tenants' data (a pool table's
// DDL is recorded in every tenant's archive), so only the tag is kept.
func ddlText(tag, query string) string {
	if tag == "" {
		return ""
	}
	stmts := splitStatements(query)
	switch {
	case tag == "CREATE TABLE AS" || tag == "SELECT INTO":
		return tag + " (text not recorded: it holds rows)"
	case len(stmts) != 1:
		return fmt.Sprintf("%s (text not recorded: the query string held %d statements)", tag, len(stmts))
	}
	first, _, _ := strings.Cut(strings.TrimLeft(stmts[0], " \t\r\n("), " ")
	switch strings.ToUpper(first) {
	case "CREATE", "ALTER", "DROP", "COMMENT":
		return stmts[0]
	}
	return tag + " (text not recorded: run from " + strings.ToUpper(first) + ")"
}

// splitStatements splits a query string at its top-level semicolons,
// skipping comments and the contents of quoted identifiers, string
// constants (standard, E” with backslash escapes) and dollar-quoted
// strings. Empty statements are dropped; each is trimmed.
func splitStatements(q string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ';':
			flush()
			i++
			continue
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			i += j
			cur.WriteByte(' ')
			continue
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			depth, j := 0, i
			for j < len(q) {
				if strings.HasPrefix(q[j:], "/*") {
					depth, j = depth+1, j+2
				} else if strings.HasPrefix(q[j:], "*/") {
					depth, j = depth-1, j+2
					if depth == 0 {
						break
					}
				} else {
					j++
				}
			}
			i = j
			cur.WriteByte(' ')
			continue
		case c == '\'' || c == '"':
			escapes := c == '\'' && i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i < 2 || !isIdentByte(q[i-2]))
			j := i + 1
			for j < len(q) {
				if escapes && q[j] == '\\' {
					j += 2
					continue
				}
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(q))
			cur.WriteString(q[i:j])
			i = j
			continue
		case c == '$' && (i == 0 || !isIdentByte(q[i-1])):
			if tag, ok := dollarTag(q[i:]); ok {
				end := strings.Index(q[i+len(tag):], tag)
				j := len(q)
				if end >= 0 {
					j = i + len(tag) + end + len(tag)
				}
				cur.WriteString(q[i:j])
				i = j
				continue
			}
		}
		cur.WriteByte(c)
		i++
	}
	flush()
	return out
}

// dollarTag returns the dollar-quote opening s starts with ($$ or $tag$).
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || j > 1 && c >= '0' && c <= '9':
		default:
			return "", false
		}
	}
	return "", false
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
