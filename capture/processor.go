package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantwal/tenantwal/capture/pgoutput"
	"github.com/tenantwal/tenantwal/capture/route"
	"github.com/tenantwal/tenantwal/internal/catalog"
	"github.com/tenantwal/tenantwal/internal/objstore"
	"github.com/tenantwal/tenantwal/schemas"
)

// processor turns decoded pgoutput messages into per-tenant batches. It runs
// on one goroutine and owns its catalog connection.
type processor struct {
	cat     *pgx.Conn
	router  *route.Router
	pub     *publisher
	log     *slog.Logger
	metrics *Metrics

	rels   map[uint32]*relation
	chunks *chunker
	// store is the archive, read for the tenants a pool TRUNCATE affects;
	// nil disables archived tenants (tests of the processor alone).
	store objstore.Store
	// archived are the tenants the archive held when the first pool
	// TRUNCATE was processed (read once, then archivedRead); later tenants
	// are in chunks.tenants.
	archived     []schemas.TenantID
	archivedRead bool
	// snap is this run's initial snapshot (nil when it had none).
	snap *snapInfo
	// deferred run at the end of the current transaction, after its
	// changes (see deferMarker).
	deferred []func(ctx context.Context) error
	// restoreSchemas are schemas a tenantwal restore announced with a
	// logical message in the transaction that created them.
	restoreSchemas map[string]bool
	// marked holds, by relation, the version last archived from a
	// transaction: marked by the event trigger's DDL message (ddl.go) or
	// by a Relation message. A Relation message of the version a DDL
	// message marked does not mark it again, nor the other way round.
	marked      map[uint32]*relation
	publication string
	inTxn       bool
	seq         uint32
	lsn         schemas.LSN
	xid         uint32
}

func newProcessor(cat *pgx.Conn, r *route.Router, pub *publisher, cfg Config, log *slog.Logger, m *Metrics) *processor {
	p := &processor{cat: cat, router: r, pub: pub, log: log, metrics: m,
		rels:           map[uint32]*relation{},
		restoreSchemas: map[string]bool{},
		marked:         map[uint32]*relation{},
		publication:    cfg.Publication,
		chunks:         newChunker(pub, schemas.KindChanges, cfg.ChunkBytes, cfg.TxnBufferBytes)}
	p.chunks.tenants = map[schemas.TenantID]struct{}{}
	return p
}

func (p *processor) handle(ctx context.Context, msg pgoutput.Message) error {
	switch m := msg.(type) {
	case *pgoutput.Begin:
		p.inTxn, p.seq, p.lsn, p.xid = true, 0, m.FinalLSN, m.XID
		p.deferred = p.deferred[:0]
		p.chunks.begin(m.FinalLSN, m.CommitTime, m.XID)
	case *pgoutput.Commit:
		if !p.inTxn {
			return fmt.Errorf("commit at %s without begin", m.CommitLSN)
		}
		for _, f := range p.deferred {
			if err := f(ctx); err != nil {
				return err
			}
		}
		p.deferred = p.deferred[:0]
		p.inTxn = false
		if err := p.chunks.flushAll(ctx, m.EndLSN); err != nil {
			return err
		}
		p.metrics.txns.Inc()
		return p.pub.commit(ctx, txnMark{CommitLSN: m.CommitLSN, EndLSN: m.EndLSN, Time: m.CommitTime})
	case *pgoutput.Relation:
		return p.relation(ctx, m)
	case *pgoutput.Insert:
		rel, err := p.rel(m.RelID)
		if err != nil || rel.route.Excluded {
			return err
		}
		row := values(m.New)
		if rel, err = p.checkLabels(ctx, rel, row); err != nil {
			return err
		}
		return p.emit(ctx, rel, schemas.Event{Op: schemas.OpInsert, New: row})
	case *pgoutput.Update:
		rel, err := p.rel(m.RelID)
		if err != nil || rel.route.Excluded {
			return err
		}
		if len(rel.enums) > 0 {
			if rel, err = p.checkLabels(ctx, rel, values(m.New)); err != nil {
				return err
			}
		}
		return p.update(ctx, rel, m)
	case *pgoutput.Delete:
		rel, err := p.rel(m.RelID)
		if err != nil || rel.route.Excluded {
			return err
		}
		if rel.noTenantKey {
			return p.unroutable(rel, "DELETE")
		}
		return p.emit(ctx, rel, schemas.Event{Op: schemas.OpDelete, Old: values(m.Old)})
	case *pgoutput.Truncate:
		return p.truncate(ctx, m)
	case *pgoutput.LogicalMessage:
		switch m.Prefix {
		case schemas.RestoreSchemaComment:
			p.restoreSchemas[string(m.Content)] = true
		case ddlMessagePrefix:
			return p.ddl(ctx, m)
		}
		// Heartbeats only move positions.
	case *pgoutput.Origin, *pgoutput.TypeMsg:
		// Types are resolved from the catalog.
	}
	return nil
}

// checkLabels returns rel, or its new version when row uses an enum label
// the archived types do not list yet.
func (p *processor) checkLabels(ctx context.Context, rel *relation, row []schemas.Value) (*relation, error) {
	if len(rel.enums) == 0 || !unknownLabel(rel.enums, row) {
		return rel, nil
	}
	return p.refreshTypes(ctx, rel)
}

func (p *processor) rel(id uint32) (*relation, error) {
	r := p.rels[id]
	if r == nil {
		return nil, fmt.Errorf("change for relation %d before its Relation message", id)
	}
	return r, nil
}

// relation builds the table schema pgoutput describes, enriched with the
// catalog's types, keys and defaults matched by column name, and makes it
// the relation's current version; a version new to the archive is marked
// for every tenant at the end of the transaction.
func (p *processor) relation(ctx context.Context, m *pgoutput.Relation) error {
	if err := p.waitVisible(ctx); err != nil {
		return err
	}
	prev := p.rels[m.RelID]
	mk := p.marked[m.RelID]
	var rel *relation
	var facts map[string]columnFact
	if mk != nil && len(mk.recorded) > 0 {
		// The catalog as the DDL event trigger recorded it at the table's
		// last command: the live one may hold later DDL's indexes and
		// constraints (capture was down or behind). Every DDL of the table
		// before this change sent its message before this one.
		r, f, err := p.describe(ctx, mk.recorded, m, prev, mk.at)
		if err != nil {
			return err
		}
		if r.ts.Version == mk.ts.Version {
			rel, facts = mk, f
		}
	}
	if rel == nil {
		var err error
		if rel, facts, err = p.describe(ctx, p.cat, m, prev, nil); err != nil {
			return err
		}
		if mk != nil && mk.ts.Version == rel.ts.Version {
			rel = mk // the same, with the DDL text that made it
		}
	}
	p.rels[m.RelID] = rel
	recreated := false
	for id, r := range p.rels {
		if id != m.RelID && r.ts.Schema == rel.ts.Schema && r.ts.Name == rel.ts.Name {
			delete(p.rels, id)
			recreated = true
		}
	}
	if rel.route.Excluded || !p.inTxn || rel == mk {
		return nil // or the event trigger's DDL message marked it already
	}
	p.marked[m.RelID] = rel
	var prevTS *schemas.TableSchema
	if prev != nil {
		prevTS = prev.ts
	} else if p.snap != nil {
		prevTS = p.snap.tables[m.RelID]
		if prevTS == nil {
			for _, t := range p.snap.tables {
				recreated = recreated || t.Schema == rel.ts.Schema && t.Name == rel.ts.Name
			}
		}
	}
	switch {
	case recreated:
		// Dropped and created again: the new generation's first change
		// starts it empty in restores; the marker tells every tenant.
		p.log.Info("table dropped and created again", slog.String("table", rel.ts.QualifiedName()), slog.String("lsn", p.lsn.String()))
		p.deferMarker(rel)
	case prevTS != nil && prevTS.Version != rel.ts.Version:
		p.newVersion(rel, prevTS, facts)
	}
	return nil
}

// newVersion marks rel's version, which replaces prev, for every tenant:
// a restore of a tenant without changes of its own after the DDL still
// gets the table's columns of that moment. Columns a rewrite gave new
// values are read back from the source (backfill).
func (p *processor) newVersion(rel *relation, prev *schemas.TableSchema, facts map[string]columnFact) {
	p.deferMarker(rel)
	if cols := rewrittenColumns(prev, rel.ts); len(cols) > 0 {
		p.deferred = append(p.deferred, func(ctx context.Context) error { return p.backfill(ctx, rel, cols, facts) })
	}
}

// describe builds the relation m describes from the catalog q answers for
// (the live one, or the one a DDL command left: catalog_record.go); prev
// is the relation's previous version, if any, whose catalog facts stand in
// when the table is gone.
// at are column facts read when m was true (by the DDL event trigger):
// their attnums and missing values win over the catalog's, which may have
// moved on since (a rewrite clears missing values).
func (p *processor) describe(ctx context.Context, q querier, m *pgoutput.Relation, prev *relation, at map[string]columnFact) (*relation, map[string]columnFact, error) {
	ts := &schemas.TableSchema{RelID: m.RelID, Schema: m.Namespace, Name: m.Name, ReplicaIdentity: m.ReplicaIdentity}
	cat, err := loadTable(ctx, q, m.RelID)
	var facts map[string]columnFact
	if err == nil {
		facts, err = loadColumnFacts(ctx, q, m.RelID)
	}
	if err == nil {
		cat.Generated, err = loadGenerated(ctx, q, m.RelID)
	}
	if err != nil {
		// The table was dropped since this change (capture reads the
		// catalog when it decodes, not as of the change): keep what the
		// previous version knew about columns of the same name and type.
		p.log.Warn("relation no longer in the catalog; archiving with pgoutput's description and its previous version's",
			slog.String("table", m.Namespace+"."+m.Name), slog.Any("error", err))
		cat, facts = &schemas.TableSchema{}, nil
		if prev != nil {
			cat, facts = prev.ts, factsOf(prev.ts)
		}
	}
	if len(at) > 0 {
		facts = maps.Clone(facts)
		if facts == nil {
			facts = map[string]columnFact{}
		}
		for name, f := range at {
			cf := facts[name]
			cf.num, cf.typeOID, cf.missing = f.num, f.typeOID, f.missing
			facts[name] = cf
		}
	}
	for _, c := range m.Columns {
		col := schemas.Column{Name: c.Name, TypeOID: c.TypeOID, TypeMod: c.TypeMod, Key: c.Flags&1 != 0}
		if i := cat.ColumnIndex(c.Name); i >= 0 && cat.Columns[i].TypeOID == c.TypeOID {
			cc := cat.Columns[i]
			col.TypeName, col.NotNull, col.Default, col.Identity = cc.TypeName, cc.NotNull, cc.Default, cc.Identity
		} else if err := p.cat.QueryRow(ctx, `SELECT format_type($1, $2)`, c.TypeOID, c.TypeMod).Scan(&col.TypeName); err != nil {
			return nil, nil, fmt.Errorf("resolve type %d of %s.%s: %w", c.TypeOID, m.Name, c.Name, err)
		}
		if ts.ReplicaIdentity == 'f' {
			col.Key = true
		}
		ts.Columns = append(ts.Columns, col)
	}
	for _, k := range cat.PrimaryKey {
		if ts.ColumnIndex(k) < 0 {
			ts.PrimaryKey = nil
			break
		}
		ts.PrimaryKey = append(ts.PrimaryKey, k)
	}
	ts.Types = cat.Types
	ts.Generated, ts.Indexes, ts.Constraints = cat.Generated, cat.Indexes, cat.Constraints
	if err == nil {
		if err = loadIndexesAndConstraints(ctx, q, ts); err != nil {
			p.log.Warn("cannot read the table's indexes and constraints; restores will not recreate them", slog.String("table", ts.QualifiedName()), slog.Any("error", err))
		}
	}
	ts.RestoreTarget = cat.RestoreTarget || p.restoreSchemas[ts.Schema]
	applyColumnFacts(ts, facts)
	rt := p.router.Route(ts)
	ts.TenantColumn = rt.ColumnName
	ts.ComputeVersion()
	// A tenant column outside the replica identity is refused by the
	// preflight, but a table created later can still have one. Its inserts
	// and updates that keep the key route by the new row; only a change
	// that needs the old row fails (unroutable).
	noTenantKey := rt.Column >= 0 && ts.ReplicaIdentity != 'f' && !ts.Columns[rt.Column].Key
	if noTenantKey && (prev == nil || !prev.noTenantKey) {
		p.log.Warn("the tenant column is not in the table's replica identity: its deletes and key changes cannot be archived",
			slog.String("table", ts.QualifiedName()), slog.String("fix", fmt.Sprintf("ALTER TABLE %s.%s REPLICA IDENTITY FULL", quoteIdent(ts.Schema), quoteIdent(ts.Name))))
	}
	return &relation{ts: ts, route: rt, noTenantKey: noTenantKey, enums: enumColumns(ts)}, facts, nil
}

// deferMarker marks rel's new version for every tenant at the end of the
// current transaction. A Relation message is not a change: PostgreSQL sends
// it again after a restart, so what it causes must not shift the positions
// of the transaction's changes (the archive's identity of a change); at the
// end it only takes positions after them.
func (p *processor) deferMarker(rel *relation) {
	p.deferred = append(p.deferred, func(ctx context.Context) error {
		p.seq++
		return p.markTables(ctx, rel, schemas.OpSchema, 0, p.seq)
	})
}

// unroutable is the error for a change whose old row is needed to find its
// tenant but does not carry the tenant column. Retrying cannot help: the
// WAL holds the change as it was logged.
func (p *processor) unroutable(rel *relation, what string) error {
	return &FatalError{fmt.Errorf("table %s: a %s at %s cannot be routed to its tenant: the tenant column %q is not in the replica identity, so the old row does not carry it. "+
		"Run ALTER TABLE %s.%s REPLICA IDENTITY FULL for future changes; this change cannot be archived (a gap for the table's tenants)",
		rel.ts.QualifiedName(), what, p.lsn, rel.route.ColumnName, quoteIdent(rel.ts.Schema), quoteIdent(rel.ts.Name))}
}

func (p *processor) emit(ctx context.Context, rel *relation, e schemas.Event) error {
	row := e.New
	if e.Op == schemas.OpDelete {
		row = e.Old
	}
	tenant, err := rel.route.Tenant(row)
	if err != nil {
		return fmt.Errorf("table %s at %s: %w", rel.ts.QualifiedName(), p.lsn, err)
	}
	p.seq++
	e.Seq = p.seq
	return p.chunks.add(ctx, tenant, rel.ts, e)
}

// update fills unchanged TOAST values from a full old row, splits a move
// between tenants into a delete and an insert, and keeps the old key only
// when the key changed.
func (p *processor) update(ctx context.Context, rel *relation, m *pgoutput.Update) error {
	newRow := values(m.New)
	if m.OldKind == 0 {
		return p.emit(ctx, rel, schemas.Event{Op: schemas.OpUpdate, New: newRow})
	}
	if rel.noTenantKey {
		return p.unroutable(rel, "key-changing UPDATE")
	}
	oldRow := values(m.Old)
	if m.OldKind == pgoutput.OldFull {
		for i := range newRow {
			if newRow[i].Kind == schemas.ValueUnchanged && i < len(oldRow) && oldRow[i].Kind != schemas.ValueUnchanged {
				newRow[i] = oldRow[i]
			}
		}
	}
	oldTenant, err := rel.route.Tenant(oldRow)
	if err != nil {
		return fmt.Errorf("table %s at %s: old row: %w", rel.ts.QualifiedName(), p.lsn, err)
	}
	newTenant, err := rel.route.Tenant(newRow)
	if err != nil {
		return fmt.Errorf("table %s at %s: %w", rel.ts.QualifiedName(), p.lsn, err)
	}
	if oldTenant != newTenant {
		if err := p.resolveMoved(ctx, rel, newRow); err != nil {
			return err
		}
		p.seq++
		if err := p.chunks.add(ctx, oldTenant, rel.ts, schemas.Event{Seq: p.seq, Op: schemas.OpDelete, Old: oldRow}); err != nil {
			return err
		}
		p.seq++
		return p.chunks.add(ctx, newTenant, rel.ts, schemas.Event{Seq: p.seq, Op: schemas.OpInsert, New: newRow})
	}
	e := schemas.Event{Op: schemas.OpUpdate, New: newRow}
	if !keyEqual(rel.ts, oldRow, newRow) {
		e.Old = oldRow
	}
	return p.emit(ctx, rel, e)
}

// truncate archives a truncate marker for every tenant that can have rows
// in each truncated table: the table's fixed tenant (bridge, shared), or for
// a pool table every tenant known to the archive or seen by this capture.
//
// That union is complete: a row of the table was either in this run's
// initial snapshot, archived before this capture started (its tenant has
// objects), or changed since the slot position this capture started from
// (seen by this processor, since the slot replays everything after the
// archived watermark). A marker for a tenant that never had rows in the
// table is harmless: restores do not create a table for a marker alone.
func (p *processor) truncate(ctx context.Context, m *pgoutput.Truncate) error {
	for _, id := range m.RelIDs {
		rel, err := p.rel(id)
		if err != nil {
			return err
		}
		if rel.route.Excluded {
			continue
		}
		p.seq++
		if err := p.markTables(ctx, rel, schemas.OpTruncate, m.Options, p.seq); err != nil {
			return err
		}
	}
	return nil
}

// markTables archives a marker (truncate, or schema change) of rel for
// every tenant that can have rows in it, all at position seq of the
// transaction: how many tenants are known may differ after a restart, the
// positions of the transaction's changes must not.
func (p *processor) markTables(ctx context.Context, rel *relation, op schemas.Op, flags uint8, seq uint32) error {
	tenants := []schemas.TenantID{rel.route.Fixed}
	if rel.route.Column >= 0 {
		var err error
		if tenants, err = p.poolTenants(ctx); err != nil {
			return err
		}
		p.log.Info("pool table truncated or changed: a marker for every known tenant",
			slog.String("table", rel.ts.QualifiedName()), slog.String("op", op.String()), slog.String("lsn", p.lsn.String()), slog.Int("tenants", len(tenants)))
	}
	for _, t := range tenants {
		if err := p.chunks.add(ctx, t, rel.ts, schemas.Event{Seq: seq, Op: op, Flags: flags}); err != nil {
			return err
		}
	}
	return nil
}

// poolTenants returns every tenant that can have rows in a pool table, in
// a stable order: the archive's tenants (listed once per run), the tenants
// of this run's initial snapshot (perhaps not archived yet) and every
// tenant this processor has routed a change to.
func (p *processor) poolTenants(ctx context.Context) ([]schemas.TenantID, error) {
	if !p.archivedRead && p.store != nil {
		ts, err := catalog.ListTenants(ctx, p.store)
		if err != nil {
			return nil, fmt.Errorf("list the archive's tenants for a pool TRUNCATE at %s: %w", p.lsn, err)
		}
		p.archived, p.archivedRead = ts, true
	}
	set := map[schemas.TenantID]struct{}{}
	for _, t := range p.archived {
		set[t] = struct{}{}
	}
	for t := range p.chunks.tenants {
		set[t] = struct{}{}
	}
	if p.snap != nil {
		for _, t := range p.snap.tenants {
			set[t] = struct{}{}
		}
	}
	delete(set, schemas.SharedTenant) // pool rows never route there
	out := make([]schemas.TenantID, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}

// resolveMoved fills the unchanged TOAST values of a row that moved to
// another tenant without a full old row (a key-changing update under a
// default or index identity). The new tenant's archive has no earlier
// version of the row to carry them forward from, and the old tenant's must
// not be read for it, so they are read from the source by the row's key.
// The value is exact when the row is still the version this transaction
// wrote (its xmin); when the row changed since, the current value is used
// and a warning logged (restore points before the column's next change may
// show the newer value); when the row is gone, the values stay unresolved
// and restores of the new tenant up to its deletion fail loudly.
func (p *processor) resolveMoved(ctx context.Context, rel *relation, row []schemas.Value) error {
	var missing []int
	for i, v := range row {
		if v.Kind == schemas.ValueUnchanged {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	ts := rel.ts
	var keyIdx []int
	for _, k := range ts.PrimaryKey {
		keyIdx = append(keyIdx, ts.ColumnIndex(k))
	}
	if len(keyIdx) == 0 {
		for i, c := range ts.Columns {
			if c.Key {
				keyIdx = append(keyIdx, i)
			}
		}
	}
	var where []string
	var args []any
	for _, i := range keyIdx {
		if i < 0 || row[i].Kind != schemas.ValueText {
			return p.unresolvedMove(rel, "its key is not known")
		}
		args = append(args, string(row[i].Data))
		where = append(where, fmt.Sprintf("%s = $%d::%s", quoteIdent(ts.Columns[i].Name), len(args), ts.Columns[i].TypeName))
	}
	if len(where) == 0 {
		return p.unresolvedMove(rel, "the table has no key")
	}
	cols := []string{"xmin::text"}
	for _, i := range missing {
		cols = append(cols, quoteIdent(ts.Columns[i].Name)+"::text")
	}
	q := fmt.Sprintf("SELECT %s FROM ONLY %s.%s WHERE %s", strings.Join(cols, ", "), quoteIdent(ts.Schema), quoteIdent(ts.Name), strings.Join(where, " AND "))
	vals := make([]*string, len(cols))
	dst := make([]any, len(cols))
	for i := range vals {
		dst[i] = &vals[i]
	}
	err := p.cat.QueryRow(ctx, q, args...).Scan(dst...)
	if errors.Is(err, pgx.ErrNoRows) {
		return p.unresolvedMove(rel, "the row no longer exists in the source")
	}
	if err != nil {
		return fmt.Errorf("read the unchanged values of a row moved between tenants in %s at %s: %w", ts.QualifiedName(), p.lsn, err)
	}
	if vals[0] == nil || *vals[0] != strconv.FormatUint(uint64(p.xid), 10) {
		p.log.Warn("a row moved between tenants with unchanged TOAST values was changed since; archiving its current values",
			slog.String("table", ts.QualifiedName()), slog.String("lsn", p.lsn.String()))
	}
	for k, i := range missing {
		if v := vals[k+1]; v == nil {
			row[i] = schemas.Value{Kind: schemas.ValueNull}
		} else {
			row[i] = schemas.Value{Kind: schemas.ValueText, Data: []byte(*v)}
		}
	}
	return nil
}

func (p *processor) unresolvedMove(rel *relation, why string) error {
	p.log.Error("a row moved between tenants with unchanged TOAST values that cannot be resolved: restores of its new tenant will fail until the row's next full version; use REPLICA IDENTITY FULL on this table",
		slog.String("table", rel.ts.QualifiedName()), slog.String("lsn", p.lsn.String()), slog.String("reason", why))
	return nil
}
