package pgserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// BinDirEnv names the environment variable that points at the directory
// holding the PostgreSQL server binaries (postgres, initdb).
const BinDirEnv = "TENANTWAL_PG_BINDIR"

// ErrNoBinaries is wrapped by FindBinDir's error when no PostgreSQL server
// binaries were found.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found")

// versionedBinGlobs are the distributions' versioned install locations,
// searched when neither TENANTWAL_PG_BINDIR nor pg_config gives an answer.
var versionedBinGlobs = []string{
	"/usr/lib/postgresql/*/bin", // Debian, Ubuntu
	"/usr/pgsql-*/bin",          // RHEL, Fedora (PGDG)
}

// FindBinDir returns the directory holding the PostgreSQL server binaries
// postgres and initdb. It looks, in order, at
//
//  1. $TENANTWAL_PG_BINDIR (an error if it is set but lacks the binaries),
//  2. `pg_config --bindir`, if that directory has postgres and initdb
//     (Debian ships pg_config without the server),
//  3. the newest of /usr/lib/postgresql/*/bin and /usr/pgsql-*/bin.
//
// The error wraps ErrNoBinaries and names the fix.
func FindBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		if err := checkBinDir(dir); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %w", ErrNoBinaries, BinDirEnv, dir, err)
		}
		return dir, nil
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
			dir := strings.TrimSpace(string(out))
			if checkBinDir(dir) == nil {
				return dir, nil
			}
		}
	}
	if dir := newestVersionedBinDir(); dir != "" {
		return dir, nil
	}
	return "", fmt.Errorf("%w: set %s to the directory holding postgres and initdb, "+
		"or install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql-15; "+
		"RHEL/Fedora: dnf install postgresql15-server; macOS: brew install postgresql@15)",
		ErrNoBinaries, BinDirEnv)
}

// checkBinDir reports whether dir holds executable postgres and initdb.
func checkBinDir(dir string) error {
	for _, name := range []string{"postgres", "initdb"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("stat %s: %w", name, err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable file", filepath.Join(dir, name))
		}
	}
	return nil
}

// newestVersionedBinDir returns the usable versioned bin directory with the
// highest major version, or "".
func newestVersionedBinDir() string {
	type candidate struct {
		dir     string
		version []int
	}
	var cands []candidate
	for _, glob := range versionedBinGlobs {
		matches, _ := filepath.Glob(glob) // the patterns are constant and valid
		for _, dir := range matches {
			if checkBinDir(dir) != nil {
				continue
			}
			name := filepath.Base(filepath.Dir(dir)) // "15" or "pgsql-15"
			name = name[strings.LastIndexByte(name, '-')+1:]
			cands = append(cands, candidate{dir: dir, version: parseVersion(name)})
		}
	}
	if len(cands) == 0 {
		return ""
	}
	best := slices.MaxFunc(cands, func(a, b candidate) int { return slices.Compare(a.version, b.version) })
	return best.dir
}

// parseVersion turns "9.6" or "15" into comparable integers; a part that
// does not parse counts as -1, so it sorts below any real version.
func parseVersion(s string) []int {
	parts := strings.Split(s, ".")
	v := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			n = -1
		}
		v[i] = n
	}
	return v
}
