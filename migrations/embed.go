// Package migrations holds feedd's SQL schema migrations, one directory per
// store, embedded in the binary and applied by goose at start-up.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// SQLite returns the migrations of the SQLite store.
func SQLite() fs.FS { return sub("sqlite") }

// Postgres returns the migrations of the PostgreSQL store.
func Postgres() fs.FS { return sub("postgres") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return f
}
