// Command feedd serves per-user Server-Sent Events feeds from an SQLite log
// of notifications. Run it with no arguments to start a server with
// embedded defaults; see feedd serve --help for the settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/feedd/feedd/internal/db"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err, if any, as one line and returns the exit status:
// 2 for a bad command line or setting, 1 for anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "feedd: %v\n", err)
	if _, ok := errors.AsType[usageError](err); ok {
		return 2
	}
	return 1
}

// run is feedd: it reads its settings from args and getenv, writes what a
// person should see to stdout and logs to stderr, and returns when ctx is
// cancelled (serve) or the subcommand is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help":
			cmd = "help"
		case len(a) > 0 && a[0] != '-':
			cmd, args = a, args[1:]
		}
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "token":
		return token(args, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, getenv, stdout)
	case "backup":
		return backup(ctx, args, getenv, stdout)
	case "version":
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		if err := parse(fs, "feedd version", args, getenv, stdout); err != nil {
			return err
		}
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help":
		fmt.Fprint(stdout, usageText)
		return nil
	}
	return usagef("unknown command %q; the commands are serve, token, migrate, backup and version (see feedd help)", cmd)
}

const usageText = `feedd serves per-user Server-Sent Events feeds from a log of notifications
in an SQLite file, or in a PostgreSQL database that many feedd processes share.

Usage:
  feedd [serve] [flags]                   run the server (the default)
  feedd token --sub USER [--ttl 24h]      mint a user token with the server's secret
  feedd token --admin [--ttl 24h]         mint an admin token (scope feed:admin)
  feedd migrate status|up [--db FILE|URL] show or apply the embedded migrations
  feedd backup [--db FILE] PATH           write a consistent copy of an SQLite database to PATH
  feedd version                           print the version
  feedd help                              print this

Run "feedd COMMAND --help" for the flags of a command; "feedd serve --help"
lists every setting of the server.
`

// token mints a token with the secret feedd serve uses.
func token(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	c.dbFlag(fs, "the database beside which feedd serve keeps its generated secret, DB.secret (used unless --jwt-secret or --jwt-secret-file is set)")
	c.secretFlags(fs)
	fs.StringVar(&c.jwtIssuer, "jwt-issuer", "", "iss to put in the token (what feedd serve --jwt-issuer requires)")
	fs.StringVar(&c.jwtAudience, "jwt-audience", "", "aud to put in the token (what feedd serve --jwt-audience requires)")
	sub := fs.String("sub", "", "user id (the token's sub); required unless --admin")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	admin := fs.Bool("admin", false, "mint an admin token (scope feed:admin) for the /admin API")
	const usage = "feedd token (--sub USER | --admin) [--ttl 24h] [flags]\n\nPrints a token signed with the secret feedd serve verifies with."
	if err := parse(fs, usage, args, getenv, stdout); err != nil {
		return err
	}
	if *sub == "" && !*admin {
		return usagef("feedd token needs --sub USER (or --admin for an admin token)")
	}
	if *ttl <= 0 {
		return usagef("--ttl must be a positive duration such as 1h")
	}
	if getenv(envName("jwt-public-key")) != "" {
		return usagef("%s is set, so feedd serve verifies tokens with that public key: mint them where its private key lives", envName("jwt-public-key"))
	}
	if err := c.checkDB(); err != nil {
		return err
	}
	warn := func(msg string) { fmt.Fprintf(stderr, "feedd: warning: %s\n", msg) }
	_, signer, err := c.keys(io.Discard, warn, false)
	if err != nil {
		return err
	}
	tok, err := signer.Mint(*sub, *ttl, *admin, c.jwtIssuer, c.jwtAudience, time.Now())
	if err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// migrate shows or applies the embedded migrations.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	const usage = "feedd migrate status|up [--db FILE|URL]\n\n" +
		"status lists the embedded migrations and whether each is applied; up applies\n" +
		"the pending ones (feedd serve also does at start-up). Either refuses a\n" +
		"database that a newer feedd has migrated."
	var c config
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	c.dbFlag(fs, "SQLite database file, or PostgreSQL URL")
	action := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		action, args = args[0], args[1:]
	}
	if err := parse(fs, usage, args, getenv, stdout); err != nil {
		return err
	}
	check := checkDBDir
	switch action {
	case "status":
		check = checkDBExists
	case "up":
	default:
		return usagef("usage: feedd migrate status|up [--db FILE|URL]")
	}
	if !db.IsPostgresURL(c.db) {
		if err := check(c.db); err != nil {
			return err
		}
	}
	c.dbMaxConns, c.dbConnectTimeout = 2, 5*time.Second
	store, err := openStore(ctx, c, false)
	if err != nil {
		return err
	}
	defer store.Close()
	if action == "up" {
		n, err := store.Migrate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied %d migration(s) to %s\n", n, c.dbName())
		return nil
	}
	ms, err := store.Migrations(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		state := "pending"
		if m.Applied {
			state = "applied " + m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%05d  %-28s %s\n", m.Version, m.Name, state)
	}
	return store.CheckVersion(ctx)
}

// backup writes a consistent copy of the database, which may be in use by
// a running server, to a new file.
func backup(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	const usage = "feedd backup [--db FILE] PATH\n\n" +
		"Writes a consistent copy of the database, which a running feedd may be\n" +
		"using, to PATH, which must not exist yet."
	var c config
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	c.dbFlag(fs, "SQLite database file to copy")
	if err := parseWithOperands(fs, usage, args, getenv, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("usage: feedd backup [--db FILE] PATH (PATH must not exist yet)")
	}
	dst := fs.Arg(0)
	if db.IsPostgresURL(c.db) {
		return usagef("--db is a PostgreSQL database: back it up with pg_dump (see docs/deploy.md)")
	}
	if _, err := os.Stat(dst); err == nil {
		return usagef("%s already exists; choose a new path", dst)
	}
	if err := checkDBExists(c.db); err != nil {
		return err
	}
	store, err := db.Open(ctx, c.db, db.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Backup(ctx, dst); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", c.db, dst)
	return nil
}

// versionString names the build: the module version and the Go toolchain.
func versionString() string {
	v := "(devel)"
	goVersion := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("feedd %s %s", v, goVersion)
}
