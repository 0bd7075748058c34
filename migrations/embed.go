// Package migrations holds feedd's SQL schema migrations, embedded in the
// binary and applied by goose at start-up.
package migrations

import "embed"

// FS holds the numbered goose migration files.
//
//go:embed *.sql
var FS embed.FS
