package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// TableSchema describes one version of a published table as capture saw it:
// the columns pgoutput sends, in order, with the catalog facts a restore
// needs to recreate the table. Version is a digest of everything but RelID,
// so the same table and shape seen twice has the same version.
type TableSchema struct {
	RelID           uint32    `json:"relid"`
	Schema          string    `json:"schema"`
	Name            string    `json:"name"`
	ReplicaIdentity byte      `json:"replica_identity"` // 'd' default, 'n' nothing, 'f' full, 'i' index
	Columns         []Column  `json:"columns"`
	PrimaryKey      []string  `json:"primary_key,omitempty"` // column names, in key order
	TenantColumn    string    `json:"tenant_column,omitempty"`
	Types           []TypeDef `json:"types,omitempty"` // user-defined types the columns use
	// Indexes are the table's indexes other than the primary key's and
	// those a constraint owns (UNIQUE, EXCLUDE): a restore recreates them.
	// Archives before Def was recorded list only indexes on plain columns.
	Indexes []IndexDef `json:"indexes,omitempty"`
	// Constraints are the table's CHECK, UNIQUE, EXCLUDE and FOREIGN KEY
	// constraints (the primary key and NOT NULL are recorded above): a
	// restore adds them after loading the rows, foreign keys once every
	// table is loaded. Absent in older archives.
	Constraints []ConstraintDef `json:"constraints,omitempty"`
	// Generated are the STORED generated columns, which pgoutput does not
	// send (before PostgreSQL 18): a restore recreates them from their
	// expression and PostgreSQL recomputes their values.
	Generated []GeneratedColumn `json:"generated,omitempty"`
	Version   string            `json:"version"`
	// Generation is the table's pg_class OID when capture records it (0 in
	// older archives). It is part of the version: a table dropped and
	// created again under the same name is a new generation, and a restore
	// at or after the new generation's first change starts it empty.
	Generation uint32 `json:"generation,omitempty"`
	// DDL holds the statements that made this version, as the source's
	// event trigger recorded them (`tenantwal init` installs it where the
	// role may): each command's text as the client sent it, which may hold
	// several statements. Empty when the version was learnt without the
	// trigger (from the table's next change). Not part of Version.
	DDL []string `json:"ddl,omitempty"`
	// RestoreTarget is set by capture when the table's schema was created
	// by a tenantwal restore (its comment says so): such tables are never
	// archived. Not part of the archive format.
	RestoreTarget bool `json:"-"`
}

// Column is one column as sent by pgoutput (generated columns are not sent
// before PostgreSQL 18, so they are absent here).
type Column struct {
	Name     string `json:"name"`
	TypeOID  uint32 `json:"type_oid"`
	TypeMod  int32  `json:"type_mod"`
	TypeName string `json:"type"`               // format_type(atttypid, atttypmod), schema-qualified when not visible
	Key      bool   `json:"key,omitempty"`      // part of the replica identity
	NotNull  bool   `json:"not_null,omitempty"` // attnotnull
	Default  string `json:"default,omitempty"`  // pg_get_expr(adbin), empty when none
	Identity byte   `json:"identity,omitempty"` // attidentity: 'a', 'd' or 0
	// Num is the column's attnum: it survives a RENAME and differs for a
	// column dropped and added again under the same name. 0 when unknown
	// (archives before it was recorded, or the column was gone from the
	// catalog when capture read it).
	Num int16 `json:"num,omitempty"`
	// Missing is the value rows written before the column was added read
	// (pg_attribute.attmissingval: ADD COLUMN with a non-volatile default
	// sets it without writing the rows, so no change carries it); nil when
	// none.
	Missing *string `json:"missing,omitempty"`
	// Collation is the column's collation when it is not its type's
	// default, as regcollation prints it with a catalog-only search path
	// ("C", public.german); empty otherwise and in older archives.
	Collation string `json:"collation,omitempty"`
}

// IndexDef is an index. Def, when set, is what a restore recreates;
// archives before it was recorded hold only indexes on plain columns,
// described by Columns.
type IndexDef struct {
	Unique  bool     `json:"unique,omitempty"`
	Method  string   `json:"method"`  // pg_am.amname: btree, hash, gist, gin, brin, spgist
	Columns []string `json:"columns"` // key columns, in order; empty when a key is an expression
	// Name is the index's name in the source.
	Name string `json:"name,omitempty"`
	// Def is pg_get_indexdef's text after "USING <method> ", printed with
	// a catalog-only search path (non-built-in functions, operators,
	// collations and operator classes schema-qualified): the key columns
	// and expressions with their collations, operator classes and
	// ordering, then INCLUDE, WITH, NULLS NOT DISTINCT and WHERE. It names
	// no table, so it applies to the restored table as it is.
	Def string `json:"def,omitempty"`
}

// ConstraintDef is a CHECK, UNIQUE, EXCLUDE or FOREIGN KEY constraint.
type ConstraintDef struct {
	Name string `json:"name"`
	// Type is pg_constraint.contype: "c" check, "u" unique, "x" exclusion,
	// "f" foreign key.
	Type string `json:"type"`
	// Def is pg_get_constraintdef, printed with a catalog-only search path
	// ("CHECK ((amount >= 0))", "UNIQUE (email)", "FOREIGN KEY (a)
	// REFERENCES s.t(id) ON DELETE CASCADE"). A restore runs it as is for
	// "c", "u" and "x": it names no table.
	Def string `json:"def"`
	// For foreign keys: the referencing columns, the referenced table and
	// columns, and Def's text after the REFERENCES clause (MATCH, ON
	// UPDATE, ON DELETE, DEFERRABLE, NOT VALID). A restore points the key
	// at the restored copy of the referenced table.
	Columns    []string `json:"columns,omitempty"`
	RefSchema  string   `json:"ref_schema,omitempty"`
	RefTable   string   `json:"ref_table,omitempty"`
	RefColumns []string `json:"ref_columns,omitempty"`
	Actions    string   `json:"actions,omitempty"`
}

// GeneratedColumn is a STORED generated column.
type GeneratedColumn struct {
	Name     string `json:"name"`
	Num      int16  `json:"num"`  // attnum: its place among Columns by their Num
	TypeName string `json:"type"` // format_type, as Column.TypeName
	Expr     string `json:"expr"` // pg_get_expr of the generation expression, with a catalog-only search_path
	NotNull  bool   `json:"not_null,omitempty"`
}

// TypeDef is a user-defined type a column depends on, so a restore into
// another database can recreate it. Kind 'e' = enum with Labels in order;
// 'd' = domain over BaseType; 'c' composite, 'r' range, 'm' multirange
// (recorded by name only, because an enum may be inside them: a restore
// does not recreate them).
type TypeDef struct {
	Name     string   `json:"name"` // schema-qualified, quoted as needed
	Kind     byte     `json:"kind"`
	Labels   []string `json:"labels,omitempty"`
	BaseType string   `json:"base_type,omitempty"`
	// LabelOIDs are the enum labels' pg_enum OIDs, parallel to Labels: a
	// label keeps its OID across ALTER TYPE … RENAME VALUE, so a restore
	// knows which label of another version of the type is the same value.
	// Absent in older archives.
	LabelOIDs []uint32 `json:"label_oids,omitempty"`
}

// KeyNames returns the names of the replica identity columns.
func (ts *TableSchema) KeyNames() []string {
	var out []string
	for _, c := range ts.Columns {
		if c.Key {
			out = append(out, c.Name)
		}
	}
	return out
}

// QualifiedName is "schema.table", unquoted.
func (ts *TableSchema) QualifiedName() string { return ts.Schema + "." + ts.Name }

// ColumnIndex returns the position of the named column, or -1.
func (ts *TableSchema) ColumnIndex(name string) int {
	for i := range ts.Columns {
		if ts.Columns[i].Name == name {
			return i
		}
	}
	return -1
}

// ComputeVersion sets and returns Version from the schema's content (all
// but RelID, Version and DDL; Generation stands for the RelID).
func (ts *TableSchema) ComputeVersion() string {
	c := *ts
	c.RelID, c.Version, c.DDL = 0, "", nil
	b, _ := json.Marshal(&c)
	s := sha256.Sum256(b)
	ts.Version = hex.EncodeToString(s[:8])
	return ts.Version
}
