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
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "token":
		return token(args, getenv, stdout)
	case "migrate":
		return migrate(ctx, args, getenv, stdout)
	case "backup":
		return backup(ctx, args, getenv, stdout)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help":
		fmt.Fprint(stdout, usageText)
		return nil
	}
	return usagef("unknown command %q; the commands are serve, token, migrate, backup and version", cmd)
}

const usageText = `feedd serves per-user Server-Sent Events feeds from an SQLite log.

Usage:
  feedd [serve] [flags]                 run the server (the default)
  feedd token --sub USER [--ttl 24h]    mint a user token
  feedd token --admin [--ttl 1h]        mint an admin token
  feedd migrate status|up               show or apply database migrations
  feedd backup [--db FILE] PATH         copy the live database to PATH
  feedd version                         print the version

Run "feedd serve --help" for every setting.
`

// token mints a token with the configured secret.
func token(args []string, getenv func(string) string, stdout io.Writer) error {
	var c config
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	c.keyFlags(fs)
	sub := fs.String("sub", "", "user id (the token's sub); required unless --admin")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	admin := fs.Bool("admin", false, "mint an admin token (scope feed:admin) for the /admin API")
	if err := parse(fs, args, getenv, stdout); err != nil {
		return err
	}
	if *sub == "" && !*admin {
		return usagef("feedd token needs --sub USER (or --admin for an admin token)")
	}
	if *ttl <= 0 {
		return usagef("--ttl must be a positive duration such as 1h")
	}
	_, signer, err := c.keys(io.Discard)
	if err != nil {
		return err
	}
	if signer == nil {
		return usagef("feedd token mints with an HMAC secret; with --jwt-public-key, tokens come from whoever holds the private key")
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
	if len(args) == 0 || (args[0] != "status" && args[0] != "up") {
		return usagef("usage: feedd migrate status|up [--db FILE]")
	}
	action := args[0]
	var c config
	fs := flag.NewFlagSet("migrate "+action, flag.ContinueOnError)
	c.keyFlags(fs)
	if err := parse(fs, args[1:], getenv, stdout); err != nil {
		return err
	}
	store, err := db.Open(ctx, c.db, db.Options{Synchronous: c.sync})
	if err != nil {
		return err
	}
	defer store.Close()
	if action == "up" {
		n, err := store.Migrate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied %d migration(s) to %s\n", n, c.db)
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
	return nil
}

// backup writes a consistent copy of the database, which may be in use by
// a running server, to a new file.
func backup(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var c config
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	c.keyFlags(fs)
	if err := parseWithOperands(fs, args, getenv, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("usage: feedd backup [--db FILE] PATH (PATH must not exist yet)")
	}
	dst := fs.Arg(0)
	if _, err := os.Stat(dst); err == nil {
		return usagef("%s already exists; choose a new path", dst)
	}
	if _, err := os.Stat(c.db); err != nil {
		return usagef("--db %s: %v", c.db, err)
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
