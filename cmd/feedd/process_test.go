package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/db"
)

// beFeeddEnv makes the test binary run feedd's main instead of the tests,
// so that a test can start feedd as a real process without a build step.
const beFeeddEnv = "FEEDD_TEST_BE_FEEDD"

func TestMain(m *testing.M) {
	if os.Getenv(beFeeddEnv) == "1" {
		main() // calls os.Exit itself
		return
	}
	os.Exit(m.Run())
}

// proc is feedd running as an OS process: the test binary re-executed with
// beFeeddEnv set. The embedded testServer carries its base URL, database,
// signer and output, so the client helpers of harness_test.go (openFeed,
// post, do, userToken, adminToken) work on it; its shutdown does not (use
// signal and wait).
type proc struct {
	*testServer
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process is gone and its output read

	mu        sync.Mutex
	signalled time.Time // when the last signal was sent
	exitedAt  time.Time
	state     *os.ProcessState
}

// startProcess runs feedd serve on dbPath and a free loopback port with
// testSecret, plus args, and returns once it prints where it listens. The
// process is killed at the end of the test if it is still running.
func startProcess(t *testing.T, dbPath string, args ...string) *proc {
	t.Helper()
	if !db.IsPostgresURL(dbPath) {
		sqliteOnly(t)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return startProcessAs(t, exe, nil, dbPath, args...)
}

// startProcessAs is startProcess running the test binary exe with the
// credential cred (nil: this process's).
func startProcessAs(t *testing.T, exe string, cred *syscall.Credential, dbPath string, args ...string) *proc {
	t.Helper()
	signer, err := auth.NewSigner([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{"serve", "--db", dbPath, "--addr", "127.0.0.1:0", "--jwt-secret", testSecret}, args...)
	p := &proc{
		testServer: &testServer{dbPath: dbPath, signer: signer, stdout: &syncBuffer{}, stderr: &syncBuffer{}},
		cmd:        exec.Command(exe, full...),
		exited:     make(chan struct{}),
	}
	p.cmd.Env = childEnv()
	if cred != nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	p.cmd.Stderr = p.stderr
	p.cmd.WaitDelay = waitLong // bounds Wait if something else holds the pipes open
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cleanup(t) })

	listening := make(chan string, 1)
	go func() {
		// Read stdout to its end (the process's exit) before Wait, as
		// StdoutPipe requires.
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			p.stdout.Write([]byte(line))
			if m := listenLine.FindStringSubmatch(line); m != nil {
				select {
				case listening <- m[1]:
				default:
				}
			}
			if err != nil {
				break
			}
		}
		p.cmd.Wait()
		p.mu.Lock()
		p.state, p.exitedAt = p.cmd.ProcessState, time.Now()
		p.mu.Unlock()
		close(p.exited)
	}()

	select {
	case p.base = <-listening:
	case <-p.exited:
		t.Fatalf("feedd %s exited before listening: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(full, " "), p.state, p.stdout, p.stderr)
	case <-time.After(waitLong):
		t.Fatalf("feedd did not print where it listens within %s\nstdout:\n%s\nstderr:\n%s", waitLong, p.stdout, p.stderr)
	}
	return p
}

// childEnv is the test's environment without FEEDD_* settings, which would
// change the server under test, plus beFeeddEnv. Under -race it also stops
// the race runtime's one-second sleep before exit, which would otherwise
// count in the time a stop takes.
func childEnv() []string {
	var env []string
	race := "atexit_sleep_ms=0"
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "FEEDD_"):
		case strings.HasPrefix(kv, "GORACE="):
			race = strings.TrimPrefix(kv, "GORACE=") + " " + race
		default:
			env = append(env, kv)
		}
	}
	return append(env, beFeeddEnv+"=1", "GORACE="+race)
}

// signal sends sig to the process and notes the time, from which wait
// measures how long the process took to exit.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	p.mu.Lock()
	p.signalled = time.Now()
	p.mu.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil {
		select {
		case <-p.exited:
			return // it was already gone
		default:
		}
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// kill ends the process with SIGKILL: no clean-up of any kind.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
}

// wait waits for the process to exit and returns its exit status (-1 if a
// signal ended it) and the time from the last signal to the exit.
func (p *proc) wait(t *testing.T) (exitCode int, elapsed time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(waitLong + 5*time.Second):
		t.Fatalf("feedd still running %s after the signal\nstderr:\n%s", waitLong+5*time.Second, tail(p.stderr.String(), 40))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.ExitCode(), p.exitedAt.Sub(p.signalled)
}

// cleanup kills the process if it still runs, and reports what the race
// detector found in it; on failure it shows the end of the process's log.
func (p *proc) cleanup(t *testing.T) {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(waitLong + 5*time.Second):
			t.Errorf("feedd (pid %d) did not go away after SIGKILL", p.cmd.Process.Pid)
		}
	}
	if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
		t.Errorf("the race detector reported a race in feedd (pid %d):\n%s", p.cmd.Process.Pid, p.stderr)
	} else if t.Failed() {
		t.Logf("end of feedd's log (pid %d, %s):\n%s", p.cmd.Process.Pid, p.base, tail(p.stderr.String(), 30))
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// loadClient returns an HTTP client for many concurrent requests to one
// server: enough idle connections to keep them all, and a bound on each
// request so that nothing hangs a test.
func loadClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	return &http.Client{Transport: tr, Timeout: waitLong}
}

// published is one event as a client asked for it.
type published struct {
	user string // "" for a broadcast
	typ  string
	data json.RawMessage
}

// answer is one publish answered 201: what was asked and what came back.
type answer struct {
	sent []published
	got  []apiEvent
	at   time.Time // when the answer arrived
}

// failedPost is a publish that got no answer.
type failedPost struct {
	events int
	err    error
	at     time.Time
}

// publishLoad posts notifications from several goroutines as fast as the
// server answers them, to users and as broadcasts, singly and in batches,
// and records every answer. A publisher stops at its first failure.
type publishLoad struct {
	base, token string
	users       []string
	client      *http.Client

	created     atomic.Int64  // events answered 201
	inFlight    atomic.Int64  // publishes sent and not yet answered
	goal        int64         // goalReached closes once created reaches it
	goalReached chan struct{} //
	goalOnce    sync.Once
	stop        chan struct{} // closed: publishers return
	done        chan struct{} // closed once every publisher returned

	mu       sync.Mutex
	answers  []answer
	failed   []failedPost
	rejected []string // answers other than 201
}

// startLoad starts workers publishers on p for users; the load stops at
// its publishers' first failures, or at the end of the test.
func startLoad(t *testing.T, p *proc, workers int, users []string, goal int64) *publishLoad {
	l := &publishLoad{
		base: p.base, token: p.adminToken(t), users: users, client: loadClient(workers),
		goal: goal, goalReached: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { l.publish(w) })
	}
	go func() { wg.Wait(); close(l.done) }()
	t.Cleanup(func() {
		close(l.stop)
		<-l.done
		l.client.CloseIdleConnections()
	})
	return l
}

// wait waits for every publisher to stop.
func (l *publishLoad) wait(t *testing.T) {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(waitLong):
		t.Fatalf("publishers still running %s after the server went away", waitLong)
	}
}

func (l *publishLoad) publish(w int) {
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		path, body, sent := l.request(w, n)
		l.inFlight.Add(1)
		status, resp, err := postTo(l.client, l.base+path, l.token, body)
		l.inFlight.Add(-1)
		at := time.Now()
		var out struct{ Events []apiEvent }
		if err == nil && status == http.StatusCreated {
			if jerr := json.Unmarshal(resp, &out); jerr != nil {
				status = 0 // recorded as a bad answer below
			}
		}
		l.mu.Lock()
		switch {
		case err != nil:
			l.failed = append(l.failed, failedPost{len(sent), err, at})
		case status != http.StatusCreated:
			l.rejected = append(l.rejected, fmt.Sprintf("%d %s to %s", status, bytes.TrimSpace(resp), body))
		default:
			l.answers = append(l.answers, answer{sent, out.Events, at})
		}
		l.mu.Unlock()
		if err != nil || status != http.StatusCreated {
			return
		}
		if l.created.Add(int64(len(out.Events))) >= l.goal {
			l.goalOnce.Do(func() { close(l.goalReached) })
		}
	}
}

// request is publisher w's n-th publish: mostly single notifications with
// object or multi-line string data, some broadcasts, some batches of three.
func (l *publishLoad) request(w, n int) (path, body string, sent []published) {
	type item struct {
		User      string          `json:"user,omitempty"`
		Broadcast bool            `json:"broadcast,omitempty"`
		Type      string          `json:"type,omitempty"`
		Data      json.RawMessage `json:"data"`
	}
	one := func(k int) item {
		user := l.users[(w+n+k)%len(l.users)]
		switch (n + k) % 4 {
		case 0:
			return item{User: user, Data: json.RawMessage(fmt.Sprintf(`"w%d n%d k%d\nsecond line"`, w, n, k))}
		case 1:
			return item{Broadcast: true, Type: "news", Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"n":%d,"k":%d}`, w, n, k))}
		default:
			return item{User: user, Type: fmt.Sprintf("t.w%d", w), Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"n":%d,"k":%d,"list":[1,"two",null]}`, w, n, k))}
		}
	}
	record := func(it item) {
		typ := it.Type
		if typ == "" {
			typ = "message"
		}
		sent = append(sent, published{user: it.User, typ: typ, data: it.Data})
	}
	var b []byte
	if n%8 == 7 {
		batch := []item{one(0), one(1), one(2)}
		for _, it := range batch {
			record(it)
		}
		b, _ = json.Marshal(map[string][]item{"notifications": batch})
		return "/admin/notifications/batch", string(b), sent
	}
	it := one(0)
	record(it)
	b, _ = json.Marshal(it)
	return "/admin/notifications", string(b), sent
}

// check verifies that each answer names the events asked for, and returns
// every event answered 201 by id.
func (l *publishLoad) check(t *testing.T) map[int64]published {
	t.Helper()
	out := map[int64]published{}
	for _, a := range l.answered() {
		if len(a.got) != len(a.sent) {
			t.Errorf("a publish of %d events was answered with %d", len(a.sent), len(a.got))
			continue
		}
		for i, e := range a.got {
			s := a.sent[i]
			if e.ID <= 0 || e.User != s.user || e.Broadcast != (s.user == "") || e.Type != s.typ || !sameJSON(t, e.Data, s.data) {
				t.Errorf("posted %+v, answered %+v", s, e)
			}
			if _, dup := out[e.ID]; dup {
				t.Errorf("id %d answered twice", e.ID)
			}
			out[e.ID] = s
		}
	}
	return out
}

func (l *publishLoad) answered() []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.answers)
}

func (l *publishLoad) failures() []failedPost {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failed)
}

func (l *publishLoad) rejections() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.rejected)
}

// failedEvents is how many events the failed publishes asked for.
func (l *publishLoad) failedEvents() int {
	n := 0
	for _, f := range l.failures() {
		n += f.events
	}
	return n
}

// failureKinds counts the failed publishes by kind of error.
func (l *publishLoad) failureKinds() string {
	kinds := map[string]int{}
	for _, f := range l.failures() {
		switch {
		case errors.Is(f.err, syscall.ECONNREFUSED):
			kinds["connection refused"]++
		case errors.Is(f.err, syscall.ECONNRESET):
			kinds["connection reset"]++
		case errors.Is(f.err, io.EOF), errors.Is(f.err, io.ErrUnexpectedEOF),
			strings.Contains(f.err.Error(), "server closed idle connection"):
			kinds["connection closed"]++
		default:
			kinds[f.err.Error()]++
		}
	}
	return fmt.Sprint(kinds)
}

func (l *publishLoad) summary() string {
	return fmt.Sprintf("%d events answered, failures %s, refusals %q", l.created.Load(), l.failureKinds(), l.rejections())
}

// postTo posts body with an admin token; unlike testServer.post it may run
// on any goroutine and reports a failed request instead of failing the test.
// A 201 counts as answered once its JSON is complete, even if the response
// breaks off after it (before the end of a chunked body, say): a client
// holding the ids may act on them.
func postTo(client *http.Client, url, token, body string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	var answer json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return 0, nil, fmt.Errorf("201 without a complete answer: %w", err)
	}
	io.Copy(io.Discard, resp.Body) // for the connection's reuse; the answer is in
	return resp.StatusCode, answer, nil
}
