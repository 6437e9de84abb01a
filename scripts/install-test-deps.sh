#!/usr/bin/env bash
# install-test-deps.sh: install what the test suite needs outside Go modules.
# Idempotent; run it on a fresh machine (and from .ci/run) before `go test ./...`.
#
#   - versitygw v1.8.0 (S3-compatible server for internal/s3test), built with
#     `go install` into ${XDG_CACHE_HOME:-$HOME/.cache}/tenantwal/bin (~1.5 min cold);
#   - PostgreSQL 15 server binaries in /usr/lib/postgresql/15/bin, or
#     $TENANTWAL_PG_BINDIR (apt-get install postgresql-15 when root);
#   - the `postgres` OS user, which runs initdb/postgres when tests run as root.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/tenantwal/bin"
PG_BINDIR="${TENANTWAL_PG_BINDIR:-/usr/lib/postgresql/15/bin}"

say() { echo "install-test-deps: $*"; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# versitygw_version prints the module version a Go binary was built from.
versitygw_version() {
	go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/versity/versitygw" { print $3 }'
}

install_versitygw() {
	local bin="$BIN_DIR/versitygw"
	if [ -x "$bin" ] && [ "$(versitygw_version "$bin")" = "$VERSITYGW_VERSION" ]; then
		say "versitygw $VERSITYGW_VERSION already at $bin"
		return
	fi
	if ! command -v go >/dev/null 2>&1; then
		say "ERROR: go is not on PATH; it is needed to build versitygw" >&2
		exit 1
	fi
	mkdir -p "$BIN_DIR"
	say "building versitygw $VERSITYGW_VERSION into $BIN_DIR (takes a minute or two)"
	# Outside the repo, so the tenantwal go.mod is not involved.
	(cd "$BIN_DIR" && GOBIN="$BIN_DIR" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION")
	say "installed $bin ($(versitygw_version "$bin"))"
}

install_postgres() {
	if [ -x "$PG_BINDIR/postgres" ] && [ -x "$PG_BINDIR/initdb" ]; then
		say "PostgreSQL found in $PG_BINDIR"
		return
	fi
	if [ -n "${TENANTWAL_PG_BINDIR:-}" ]; then
		say "ERROR: TENANTWAL_PG_BINDIR=$TENANTWAL_PG_BINDIR has no postgres/initdb" >&2
		exit 1
	fi
	if is_root && command -v apt-get >/dev/null 2>&1; then
		say "installing postgresql-15 with apt-get"
		if ! DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-15; then
			apt-get update
			DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-15
		fi
		say "installed PostgreSQL 15 in $PG_BINDIR"
		return
	fi
	say "PostgreSQL 15 not found in $PG_BINDIR. Install it (Debian/Ubuntu: sudo apt-get install postgresql-15)" \
		"or set TENANTWAL_PG_BINDIR to a directory with postgres and initdb." >&2
	exit 1
}

ensure_postgres_user() {
	if id -u postgres >/dev/null 2>&1; then
		say "OS user postgres exists"
		return
	fi
	if is_root; then
		if getent group postgres >/dev/null 2>&1; then
			useradd --system --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres
		else
			useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
		fi
		say "created OS user postgres"
		return
	fi
	say "note: no OS user postgres; tests running as root need it (sudo useradd --system postgres)"
}

install_versitygw
install_postgres
ensure_postgres_user
say "done"
