package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"syscall"
	"time"
)

// usageError is a bad command line or setting: main exits 2 on it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

// config holds every setting of feedd serve. Each is a flag and a FEEDD_*
// environment variable; the flag wins.
type config struct {
	db              string
	addr            string
	jwtSecret       string
	jwtSecretFile   string
	jwtPublicKey    string
	jwtIssuer       string
	jwtAudience     string
	pollInterval    time.Duration
	heartbeat       time.Duration
	retry           time.Duration
	writeTimeout    time.Duration
	retention       time.Duration
	maxConnsPerUser int
	corsOrigins     string
	tlsCert         string
	tlsKey          string
	logFormat       string
	logLevel        string
	sync            string
	shutdownDelay   time.Duration
	maxFeeds        int
	maxBodyBytes    int64
	maxDataBytes    int
	maxUsers        int
	maxTokenBytes   int
	maxHeaderBytes  int
	readHeader      time.Duration
	readTimeout     time.Duration
	idleTimeout     time.Duration
}

// keyFlags registers the settings that locate the database and the token
// key; every subcommand that opens the database or mints tokens needs them.
func (c *config) keyFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.db, "db", "feedd.db", "SQLite database file (created and migrated if missing)")
	fs.StringVar(&c.jwtSecret, "jwt-secret", "", "HMAC secret for HS256/384/512 tokens, at least 32 bytes (default: generated and kept in DB.secret)")
	fs.StringVar(&c.jwtSecretFile, "jwt-secret-file", "", "file holding the HMAC secret")
	fs.StringVar(&c.jwtPublicKey, "jwt-public-key", "", "PEM public key (RSA, ECDSA or Ed25519), as a file path or the PEM text, to verify tokens minted elsewhere")
	fs.StringVar(&c.jwtIssuer, "jwt-issuer", "", "if set, tokens must carry this iss")
	fs.StringVar(&c.jwtAudience, "jwt-audience", "", "if set, tokens must carry this aud")
	fs.StringVar(&c.sync, "sync", "normal", "durability of a commit: normal (survives a crash of feedd) or full (also survives power loss; an fsync per commit)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// serveFlagSet returns the flags of feedd serve, bound to c.
func (c *config) serveFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.keyFlags(fs)
	c.serveFlags(fs)
	return fs
}

// serveFlags registers the settings only the server uses.
func (c *config) serveFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.DurationVar(&c.pollInterval, "poll-interval", 100*time.Millisecond, "how often the tailer looks for rows written by other processes")
	fs.DurationVar(&c.heartbeat, "heartbeat", 15*time.Second, "silence after which a feed gets a heartbeat comment")
	fs.DurationVar(&c.retry, "retry", 3*time.Second, "reconnection delay sent to clients")
	fs.DurationVar(&c.writeTimeout, "write-timeout", 10*time.Second, "a feed whose client reads nothing for this long is closed (it resumes on reconnect)")
	fs.DurationVar(&c.retention, "retention", 0, "delete events older than this, e.g. 720h; 0 keeps everything")
	fs.IntVar(&c.maxConnsPerUser, "max-conns-per-user", 32, "open feeds allowed per user; more get 429")
	fs.IntVar(&c.maxFeeds, "max-feeds", 0, "open feeds allowed in all; more get 503 (default: the open-file limit less 256)")
	fs.Int64Var(&c.maxBodyBytes, "max-body-bytes", 1<<20, "largest request body; larger get 413")
	fs.IntVar(&c.maxDataBytes, "max-data-bytes", 64<<10, "largest data of one notification")
	fs.IntVar(&c.maxUsers, "max-users-per-request", 1000, `most user ids in one notification's "users"`)
	fs.IntVar(&c.maxTokenBytes, "max-token-bytes", 8192, "longest token accepted; longer are refused before parsing")
	fs.IntVar(&c.maxHeaderBytes, "max-header-bytes", 64<<10, "largest request line and headers, query string and token included")
	fs.DurationVar(&c.readHeader, "read-header-timeout", 10*time.Second, "a client must send its request line and headers within this")
	fs.DurationVar(&c.readTimeout, "read-timeout", 30*time.Second, "a client must send its whole request, body included, within this (feeds, which send nothing after their headers, are exempt)")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 2*time.Minute, "a keep-alive connection with no request is closed after this")
	fs.StringVar(&c.corsOrigins, "cors-origins", "", "comma-separated origins whose pages may open feeds cross-origin, or *; admin endpoints are never cross-origin")
	fs.DurationVar(&c.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, answer /readyz with 503 for this long (at most 5s) before closing, so a load balancer stops sending clients first")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serves HTTPS and HTTP/2 with --tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key file (PEM)")
}

// envName is the environment variable of a flag: --poll-interval is
// FEEDD_POLL_INTERVAL.
func envName(flagName string) string {
	return "FEEDD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies environment variables, then the command line, to fs. Each
// flag's help names its variable. --help prints to stdout and returns
// flag.ErrHelp. The command line may hold flags only.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string, stdout io.Writer) error {
	if err := parseWithOperands(fs, args, getenv, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (see feedd %s --help)", fs.Arg(0), fs.Name())
	}
	return nil
}

// parseWithOperands is parse for a command that takes operands after its
// flags: they are left in fs.Args().
func parseWithOperands(fs *flag.FlagSet, args []string, getenv func(string) string, stdout io.Writer) error {
	fs.VisitAll(func(f *flag.Flag) {
		f.Usage += " [" + envName(f.Name) + "]"
	})
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if v == "" || envErr != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = usagef("%s=%q: %v", envName(f.Name), v, err)
		}
	})
	if envErr != nil {
		return envErr
	}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "Usage: feedd %s [flags]\n\nFlags (each also read from the environment variable in brackets):\n", fs.Name())
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return usagef("%v (see feedd %s --help)", err, fs.Name())
	}
	return nil
}

// check validates the settings of feedd serve.
func (c *config) check() error {
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"--poll-interval", c.pollInterval},
		{"--heartbeat", c.heartbeat},
		{"--retry", c.retry},
		{"--write-timeout", c.writeTimeout},
		{"--read-header-timeout", c.readHeader},
		{"--read-timeout", c.readTimeout},
		{"--idle-timeout", c.idleTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return usagef("%s must be a positive duration such as 100ms or 15s, not %s", p.name, p.d)
		}
	}
	if c.retention < 0 {
		return usagef("--retention must be 0 (keep everything) or a positive duration such as 720h")
	}
	if c.sync != "normal" && c.sync != "full" {
		return usagef("--sync must be normal or full, not %q", c.sync)
	}
	ints := []struct {
		name     string
		v, least int64
	}{
		{"--max-conns-per-user", int64(c.maxConnsPerUser), 1},
		{"--max-feeds", int64(c.maxFeeds), 0},
		{"--max-body-bytes", c.maxBodyBytes, 1024},
		{"--max-data-bytes", int64(c.maxDataBytes), 1},
		{"--max-users-per-request", int64(c.maxUsers), 1},
		{"--max-token-bytes", int64(c.maxTokenBytes), 256},
		{"--max-header-bytes", int64(c.maxHeaderBytes), 4096},
	}
	for _, n := range ints {
		if n.v < n.least {
			return usagef("%s must be at least %d", n.name, n.least)
		}
	}
	if c.shutdownDelay < 0 || c.shutdownDelay > maxShutdownDelay {
		return usagef("--shutdown-delay must be from 0 to %s, so that a stop still ends within 10s", maxShutdownDelay)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together: set both or neither")
	}
	return nil
}

// corsList splits --cors-origins.
func (c *config) corsList() []string {
	var out []string
	for o := range strings.SplitSeq(c.corsOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// logger builds the structured logger the settings ask for.
func (c *config) logger(stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, usagef("--log-level must be debug, info, warn or error, not %q", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, usagef("--log-format must be text or json, not %q", c.logFormat)
}

// readFile reads a file named by a setting, with the setting in the error.
func readFile(setting, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%s: %v", setting, err)
	}
	return b, nil
}

// feedLimit is --max-feeds, or by default the process's open-file limit
// less room for the database, the listener and requests that are not feeds.
func (c *config) feedLimit() int {
	if c.maxFeeds > 0 {
		return c.maxFeeds
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > math.MaxInt32 {
		return 10000
	}
	return max(int(lim.Cur)-256, 64)
}
