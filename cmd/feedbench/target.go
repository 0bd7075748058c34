package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/feedd/feedd/internal/auth"
)

// common holds the flags every scenario takes.
type common struct {
	server       string
	feedd        string
	serverArgs   string
	jwtSecret    string
	jwtIssuer    string
	jwtAudience  string
	pid          int
	metrics      string
	runs         int
	json         bool
	startTimeout time.Duration
}

// register adds the common flags to fs; FEEDD_JWT_SECRET is the secret's
// default.
func (c *common) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.feedd, "feedd", "", "a feedd `binary` to start on a fresh temporary database (build one with: go build -o /tmp/feedd ./cmd/feedd)")
	fs.StringVar(&c.server, "server", "", "`URL` of a running feedd to measure instead, e.g. http://127.0.0.1:8080")
	fs.StringVar(&c.serverArgs, "server-args", "", "extra flags for the feedd that --feedd starts, split at spaces, e.g. \"--max-feeds 20000 --sync full\" (FEEDD_* variables are not passed on)")
	fs.StringVar(&c.jwtSecret, "jwt-secret", getenv("FEEDD_JWT_SECRET"), "with --server: the server's HMAC secret, to mint tokens [FEEDD_JWT_SECRET]")
	fs.StringVar(&c.jwtIssuer, "jwt-issuer", "", "with --server: the iss the server requires, if any")
	fs.StringVar(&c.jwtAudience, "jwt-audience", "", "with --server: the aud the server requires, if any")
	fs.IntVar(&c.pid, "pid", 0, "with --server: the server's process id, to read its RSS and CPU time from /proc")
	fs.StringVar(&c.metrics, "metrics", "", "the server's Prometheus `URL` for goroutines, RSS and CPU time (default SERVER/metrics; \"off\" to skip)")
	fs.IntVar(&c.runs, "runs", 1, "repeat the scenario this many times and report the median, min and max")
	fs.BoolVar(&c.json, "json", false, "print only the JSON summary line")
	fs.DurationVar(&c.startTimeout, "start-timeout", 30*time.Second, "how long a feedd started with --feedd may take to listen")
}

// check validates the common flags.
func (c *common) check() error {
	switch {
	case c.server == "" && c.feedd == "":
		return usagef("say which server to measure: --feedd PATH starts a feedd binary on a fresh database " +
			"(build one with: go build -o /tmp/feedd ./cmd/feedd), or --server URL measures a running one")
	case c.server != "" && c.feedd != "":
		return usagef("give --feedd or --server, not both")
	case c.runs < 1:
		return usagef("--runs must be at least 1")
	}
	if c.feedd != "" {
		if c.pid != 0 {
			return usagef("--pid is for --server; with --feedd feedbench knows the process")
		}
		if _, err := os.Stat(c.feedd); err != nil {
			return usagef("--feedd %s: %v", c.feedd, err)
		}
		return nil
	}
	u, err := url.Parse(c.server)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return usagef("--server must be an http:// URL such as http://127.0.0.1:8080 (feedbench does not speak TLS)")
	}
	if c.serverArgs != "" {
		return usagef("--server-args is for a feedd that feedbench starts with --feedd")
	}
	if len(c.jwtSecret) < 32 {
		return usagef("with --server, feedbench mints tokens with the server's secret: give --jwt-secret or FEEDD_JWT_SECRET (at least 32 bytes)")
	}
	return nil
}

// target is the server under test and what it takes to talk to it.
type target struct {
	base       string // http://host:port
	addr       string // host:port
	pid        int    // 0 when unknown
	dbPath     string // "" when unknown
	metricsURL string // "" to skip
	signer     *auth.Signer
	issuer     string
	audience   string
	admin      string // admin token
	client     *http.Client
	logw       io.Writer // progress and warnings

	proc     *exec.Cmd
	procDone chan struct{}
	dir      string
}

// listenURL returns the URL in feedd's "feedd listening on URL (database
// ...)" line, or "" if line is not that line.
func listenURL(line string) string {
	_, rest, ok := strings.Cut(line, "feedd listening on ")
	if !ok {
		return ""
	}
	u, _, _ := strings.Cut(rest, " ")
	if !strings.HasPrefix(u, "http://") {
		return ""
	}
	return u
}

// startFeedd starts c.feedd on a fresh database in a temporary directory,
// after prepare (if any) has written into that database, and waits until it
// listens. conns sizes the client's connection pool.
func startFeedd(ctx context.Context, c *common, conns int, prepare func(context.Context, string) error, log io.Writer) (*target, error) {
	dir, err := os.MkdirTemp("", "feedbench-")
	if err != nil {
		return nil, err
	}
	t := &target{dir: dir, dbPath: filepath.Join(dir, "feedd.db"), logw: log}
	ok := false
	defer func() {
		if !ok {
			t.close()
		}
	}()
	if prepare != nil {
		if err := prepare(ctx, t.dbPath); err != nil {
			return nil, err
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	secret := hex.EncodeToString(key)
	args := []string{"serve", "--db", t.dbPath, "--addr", "127.0.0.1:0", "--log-level", "error", "--jwt-secret", secret}
	args = append(args, strings.Fields(c.serverArgs)...)
	cmd := exec.Command(c.feedd, args...)
	cmd.Env = childEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &tailWriter{w: log, prefix: "[feedd stderr] "}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.feedd, err)
	}
	t.proc, t.procDone, t.pid = cmd, make(chan struct{}), cmd.Process.Pid
	listening := make(chan string, 1)
	go func() {
		defer close(t.procDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u := listenURL(sc.Text()); u != "" {
				select {
				case listening <- u:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	}()
	timer := time.NewTimer(c.startTimeout)
	defer timer.Stop()
	select {
	case t.base = <-listening:
	case <-t.procDone:
		return nil, fmt.Errorf("%s exited before it listened (%s); it said:\n%s", c.feedd, cmd.ProcessState, stderr.tail())
	case <-timer.C:
		return nil, fmt.Errorf("feedd did not say where it listens within %s", c.startTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := t.setup(secret, "", "", c.metrics, conns); err != nil {
		return nil, err
	}
	ok = true
	return t, nil
}

// connect describes the running server given by --server.
func connect(c *common, conns int, log io.Writer) (*target, error) {
	t := &target{base: strings.TrimRight(c.server, "/"), pid: c.pid, logw: log}
	if err := t.setup(c.jwtSecret, c.jwtIssuer, c.jwtAudience, c.metrics, conns); err != nil {
		return nil, err
	}
	return t, nil
}

// setup fills in what follows from the base URL and the secret.
func (t *target) setup(secret, issuer, audience, metrics string, conns int) error {
	u, err := url.Parse(t.base)
	if err != nil {
		return fmt.Errorf("server URL %q: %w", t.base, err)
	}
	t.addr = u.Host
	if u.Port() == "" {
		t.addr = net.JoinHostPort(u.Hostname(), "80")
	}
	switch metrics {
	case "":
		t.metricsURL = t.base + "/metrics"
	case "off":
	default:
		t.metricsURL = metrics
	}
	t.signer, err = auth.NewSigner([]byte(secret))
	if err != nil {
		return usagef("jwt secret: %v", err)
	}
	t.issuer, t.audience = issuer, audience
	t.admin, err = t.signer.Mint("", 24*time.Hour, true, issuer, audience, time.Now())
	if err != nil {
		return err
	}
	conns = max(conns, 4)
	t.client = &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
	return nil
}

// childEnv is this process's environment without FEEDD_* variables, so
// that a feedd feedbench starts has only the settings it is given (with
// --server-args).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FEEDD_") {
			env = append(env, kv)
		}
	}
	return env
}

// log is where progress and warnings go.
func (t *target) log() io.Writer { return t.logw }

// userToken mints a token for user.
func (t *target) userToken(user string) (string, error) {
	return t.signer.Mint(user, 24*time.Hour, false, t.issuer, t.audience, time.Now())
}

// post sends body as JSON to path with the admin token and returns the
// status and the answer.
func (t *target) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	return t.postTo(ctx, t.base, path, body)
}

// postTo is post to base, which may be another feedd sharing the target's
// database and secret.
func (t *target) postTo(ctx context.Context, base, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+t.admin)
	req.Header.Set("Content-Type", "application/json")
	return t.do(req)
}

// get fetches path with token as the bearer.
func (t *target) get(ctx context.Context, path, token string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return t.do(req)
}

func (t *target) do(req *http.Request) (int, []byte, error) {
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// close stops the server feedbench started (SIGTERM, then SIGKILL after 10
// seconds) and removes its directory.
func (t *target) close() {
	if t.client != nil {
		t.client.CloseIdleConnections()
	}
	if t.proc != nil {
		t.proc.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(10 * time.Second)
		select {
		case <-t.procDone:
		case <-timer.C:
			fmt.Fprintln(t.logw, "feedbench: feedd did not stop within 10s of SIGTERM; killing it")
			t.proc.Process.Kill()
			<-t.procDone
		}
		timer.Stop()
	}
	if t.dir != "" {
		os.RemoveAll(t.dir)
	}
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tailWriter passes what the server logs on to w, each line prefixed, and
// keeps the last few KiB for an error message.
type tailWriter struct {
	w      io.Writer
	prefix string

	mu   sync.Mutex
	last []byte
	part []byte // an unfinished line
}

const tailKeep = 4 << 10

func (tw *tailWriter) Write(p []byte) (int, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.last = append(tw.last, p...)
	if len(tw.last) > tailKeep {
		tw.last = append(tw.last[:0], tw.last[len(tw.last)-tailKeep:]...)
	}
	tw.part = append(tw.part, p...)
	for {
		i := bytes.IndexByte(tw.part, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(tw.w, "%s%s\n", tw.prefix, tw.part[:i])
		tw.part = tw.part[i+1:]
	}
	tw.part = append([]byte(nil), tw.part...)
	return len(p), nil
}

// tail returns the last lines written.
func (tw *tailWriter) tail() string {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return strings.TrimSpace(string(tw.last))
}

// errStatus describes an unexpected answer.
func errStatus(what string, status int, body []byte) error {
	const keep = 300
	if len(body) > keep {
		body = body[:keep]
	}
	return errors.New(what + ": " + http.StatusText(status) + " (" + fmt.Sprint(status) + "): " + strings.TrimSpace(string(body)))
}
