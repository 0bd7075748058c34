// Command feedbench measures a feedd server under load: single and batch
// publishes, idle feeds, publish-to-receive latency, broadcasts and resumes.
// It either starts a feedd binary itself on a fresh temporary database
// (--feedd PATH) or drives one that is already running (--server URL), and
// prints a table per scenario followed by a one-line JSON summary. Beside
// every scenario's figures it reports its own CPU time, and the server's when
// it knows the server's process, so that a reader can tell when the client
// was the bottleneck.
//
// Run "feedbench help" for the scenarios and "feedbench SCENARIO --help" for
// their flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is a bad command line or a request this machine cannot meet;
// feedbench exits 2 on it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// exitCode prints err, if any, as one line and returns the exit status:
// 2 for a bad command line, 1 for anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "feedbench: %v\n", err)
	if _, ok := errors.AsType[usageError](err); ok {
		return 2
	}
	return 1
}

const usageText = `feedbench puts a feedd server under load and reports what it measured.

Usage:
  feedbench SCENARIO --feedd PATH [flags]    start PATH on a fresh database, measure, stop it
  feedbench SCENARIO --server URL [flags]    measure a running feedd (needs --jwt-secret)

Scenarios:
  publish     C publishers post single notifications (or batches) for D seconds
  idle        N feeds stay open: server memory and goroutines per feed
  latency     N feeds, R events/s to random users: publish-to-receive latency
  broadcast   N feeds, K broadcasts one at a time: time until the last feed has each
  resume      a log of M events: time to replay the 100 events after a cursor

Every scenario prints a table, then one JSON line with every figure
({"scenario":...,"runs":...}); --json prints only the JSON line. --runs N
repeats a scenario (on a fresh server each time when feedbench starts it)
and reports the median with min and max.

Run "feedbench SCENARIO --help" for the flags of a scenario.
`

// scenario is one kind of measurement.
type scenario interface {
	// flags registers the scenario's own flags.
	flags(fs *flag.FlagSet)
	// check validates the flags once they are parsed.
	check() error
	// openFiles is how many connections the scenario holds open at once.
	openFiles() int
	// params are the settings to print with the results.
	params() map[string]any
	// run measures once against t and adds its figures to res.
	run(ctx context.Context, t *target, res *result) error
}

// dbPreparer is a scenario that writes into the database file before the
// server it starts opens it.
type dbPreparer interface {
	prepareDB(ctx context.Context, feedd, dbPath string, res *result, log io.Writer) error
}

// newScenario returns the scenario called name, and a line describing it.
func newScenario(name string) (scenario, string, bool) {
	switch name {
	case "publish":
		return &publishBench{}, "C concurrent publishers post notifications for D seconds: accepted/s, publish latency, errors by status.", true
	case "idle":
		return &idleBench{}, "N feeds stay open and idle: the server's memory (RSS) and goroutines per feed.", true
	case "latency":
		return &latencyBench{}, "N feeds; R events/s to random users for D seconds: delivered/expected, duplicates, publish-to-receive latency.", true
	case "broadcast":
		return &broadcastBench{}, "N feeds; K broadcasts posted one at a time: time from the publish to the last feed's receipt, deliveries/s.", true
	case "resume":
		return &resumeBench{}, "A log of M events: time for a feed opened with a cursor to replay the 100 events after it.", true
	}
	return nil, "", false
}

// run is feedbench: args are the scenario and its flags, getenv supplies
// FEEDD_JWT_SECRET, stdout gets the results and stderr the progress.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return usagef("name a scenario: publish, idle, latency, broadcast or resume")
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return nil
	}
	sc, about, ok := newScenario(name)
	if !ok {
		return usagef("unknown scenario %q; the scenarios are publish, idle, latency, broadcast and resume", name)
	}
	var c common
	fs := flag.NewFlagSet("feedbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, getenv)
	sc.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: feedbench %s --feedd PATH | --server URL [flags]\n\n%s\n\nFlags:\n", name, about)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q; flags go after the scenario name", fs.Arg(0))
	}
	if err := c.check(); err != nil {
		return err
	}
	if err := sc.check(); err != nil {
		return err
	}
	if err := raiseFileLimit(sc.openFiles()); err != nil {
		return err
	}
	log := &lockedWriter{w: stderr}
	var results []*result
	for i := range c.runs {
		if c.runs > 1 {
			fmt.Fprintf(log, "feedbench: %s run %d of %d\n", name, i+1, c.runs)
		}
		res, err := runOnce(ctx, &c, sc, log)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	return report(stdout, name, sc.params(), results, c.json)
}

// runOnce gets a server (starting one if asked), runs the scenario once and
// stops the server it started.
func runOnce(ctx context.Context, c *common, sc scenario, log io.Writer) (*result, error) {
	res := &result{}
	var prepare func(ctx context.Context, dbPath string) error
	if p, ok := sc.(dbPreparer); ok {
		prepare = func(ctx context.Context, dbPath string) error {
			return p.prepareDB(ctx, c.feedd, dbPath, res, log)
		}
	}
	var t *target
	var err error
	if c.feedd != "" {
		t, err = startFeedd(ctx, c, sc.openFiles(), prepare, log)
	} else {
		t, err = connect(c, sc.openFiles(), log)
	}
	if err != nil {
		return nil, err
	}
	defer t.close()
	if err := sc.run(ctx, t, res); err != nil {
		return nil, err
	}
	return res, nil
}
