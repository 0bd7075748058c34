package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	_ "modernc.org/sqlite"
)

// TestBrowser proves feedd works for the client it exists for: a real
// browser engine's EventSource, and the demo page at /. It drives the
// system's Chromium headless; without one it skips, except in CI.
func TestBrowser(t *testing.T) {
	sqliteOnly(t) // it also inserts rows into the SQLite file while feedd is down
	browser := startBrowser(t)

	t.Run("EventSource", func(t *testing.T) {
		s := startServer(t, "--poll-interval", "20ms")
		tab := newTab(t, browser)
		navigate(t, tab, s.base+"/healthz") // any page of the feedd origin
		openRecorder(t, tab, "/events?token="+s.userToken(t, "alice", time.Hour), "order.shipped")
		waitJS(t, tab, `rec.opens === 1`, "the EventSource to open")

		want := []apiEvent{
			s.post(t, `{"user":"alice","data":{"text":"hello"}}`)[0],
			s.post(t, `{"user":"bob","data":"not for alice"}`)[0],
			s.post(t, `{"user":"alice","type":"order.shipped","data":{"order":42}}`)[0],
			s.post(t, `{"user":"alice","data":"line one\nline two\r\nline three"}`)[0],
			s.post(t, `{"broadcast":true,"data":"to everyone"}`)[0],
		}
		want = append(want[:1], want[2:]...) // bob's is not alice's
		got := waitEvents(t, tab, len(want))
		wantData := []string{`{"text":"hello"}`, `{"order":42}`, "line one\nline two\nline three", "to everyone"}
		wantType := []string{"message", "order.shipped", "message", "message"}
		for i, ev := range got {
			if ev.ID != strconv.FormatInt(want[i].ID, 10) || ev.Type != wantType[i] || ev.Data != wantData[i] {
				t.Errorf("event %d: got %+v, want id %d type %s data %q", i, ev, want[i].ID, wantType[i], wantData[i])
			}
		}
		if n := evalJS[int](t, tab, `rec.events.length`); n != len(want) {
			t.Errorf("the browser received %d events, want %d", n, len(want))
		}

		// A refused feed (here a long-expired token) is a non-200: the
		// browser fires error and gives up, it does not retry.
		expired := mintAt(t, s, "alice", time.Hour, time.Now().Add(-2*time.Hour))
		openRecorderAs(t, tab, "rec2", "/events?token="+expired)
		waitJS(t, tab, `rec2.errors > 0 && rec2.es.readyState === EventSource.CLOSED`, "the expired feed to be CLOSED")
		if n := evalJS[int](t, tab, `rec2.opens`); n != 0 {
			t.Errorf("a feed with an expired token opened %d times", n)
		}
	})

	t.Run("ReconnectAfterRestart", func(t *testing.T) {
		s1 := startServer(t, "--retry", "200ms", "--poll-interval", "20ms")
		u, err := url.Parse(s1.base)
		if err != nil {
			t.Fatal(err)
		}
		port := u.Port()
		tab := newTab(t, browser)
		navigate(t, tab, s1.base+"/healthz")
		// No cursor in the URL: the browser's own Last-Event-ID is the only
		// way a reconnect can get what was written while it was away.
		openRecorder(t, tab, "/events?token="+s1.userToken(t, "alice", time.Hour), "order.shipped")
		waitJS(t, tab, `rec.opens === 1`, "the EventSource to open")
		first := s1.post(t, `{"user":"alice","data":"before the restart"}`)[0]
		waitEvents(t, tab, 1)

		s1.shutdown(t)
		waitJS(t, tab, `rec.errors > 0 && rec.es.readyState === EventSource.CONNECTING`, "the browser to notice the stop and retry")

		// Written while no server runs, as another process may.
		db, err := sql.Open("sqlite", "file:"+s1.dbPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		var between []int64
		for _, q := range []string{
			`INSERT INTO events (user_id, type, data) VALUES ('alice', 'message', 'while down') RETURNING id`,
			`INSERT INTO events (user_id, type, data, data_json) VALUES ('alice', 'order.shipped', '{"order":7}', 1) RETURNING id`,
		} {
			var id int64
			if err := db.QueryRow(q).Scan(&id); err != nil {
				t.Fatal(err)
			}
			between = append(between, id)
		}
		db.Close()

		s2 := startServer(t, "--db", s1.dbPath, "--addr", "127.0.0.1:"+port, "--retry", "200ms", "--poll-interval", "20ms")
		waitJS(t, tab, `rec.opens === 2`, "the browser to reconnect by itself")
		last := s2.post(t, `{"user":"alice","data":"after the restart"}`)[0]
		got := waitEvents(t, tab, 4)
		wantIDs := []int64{first.ID, between[0], between[1], last.ID}
		wantData := []string{"before the restart", "while down", `{"order":7}`, "after the restart"}
		for i, ev := range got {
			if ev.ID != strconv.FormatInt(wantIDs[i], 10) || ev.Data != wantData[i] {
				t.Errorf("event %d: got %+v, want id %d data %q", i, ev, wantIDs[i], wantData[i])
			}
		}
		if n := evalJS[int](t, tab, `rec.events.length`); n != 4 {
			t.Errorf("the browser received %d events, want 4 (no duplicate)", n)
		}
	})

	t.Run("DemoPage", func(t *testing.T) {
		s := startServer(t, "--poll-interval", "20ms")
		tab := newTab(t, browser)
		errs := watchPage(t, tab)
		tok := s.userToken(t, "alice", time.Hour)
		old := s.post(t, `{"user":"alice","type":"greeting","data":{"text":"hello from the history"}}`)[0]
		if err := chromedp.Do(tab, chromedp.EmulateViewport(1000, 900)); err != nil {
			t.Fatal(err)
		}
		navigate(t, tab, s.base+"/#token="+tok+"&types=order.shipped")
		waitJS(t, tab, `document.body.dataset.state === 'open'`, "the page to show the feed open")
		if types := evalJS[string](t, tab, `document.getElementById('types').textContent`); types != "message, order.shipped, greeting" {
			t.Errorf("the page listens for %q", types)
		}

		posted := []apiEvent{
			s.post(t, `{"user":"alice","type":"order.shipped","data":{"order":42,"items":["book","lamp"],"total":"31.50 EUR"}}`)[0],
			s.post(t, `{"user":"alice","data":"line one\nline two\nline three"}`)[0],
			s.post(t, `{"broadcast":true,"type":"greeting","data":{"text":"hello, everyone"}}`)[0],
			s.post(t, `{"user":"alice","data":{"text":"your report is ready","pages":3}}`)[0],
		}
		all := append([]apiEvent{old}, posted...)
		shown := waitItems(t, tab, len(all))
		wantData := []string{
			"{\n  \"text\": \"your report is ready\",\n  \"pages\": 3\n}",
			"{\n  \"text\": \"hello, everyone\"\n}",
			"line one\nline two\nline three",
			"{\n  \"order\": 42,\n  \"items\": [\n    \"book\",\n    \"lamp\"\n  ],\n  \"total\": \"31.50 EUR\"\n}",
			"{\n  \"text\": \"hello from the history\"\n}",
		}
		if len(shown) != len(all) {
			t.Errorf("the page lists %d events, want %d", len(shown), len(all))
		}
		for i, it := range shown { // newest first
			e := all[len(all)-1-i]
			if it.ID != strconv.FormatInt(e.ID, 10) || it.Type != e.Type || it.Data != wantData[i] {
				t.Errorf("item %d: got %+v, want id %d type %s data %q", i, it, e.ID, e.Type, wantData[i])
			}
		}
		screenshots(t, tab)

		// Event data is text, never markup.
		const markup = `<img src=x onerror="document.title='pwned'">`
		all = append(all, s.post(t, `{"user":"alice","data":`+jsValue(t, markup)+`}`)[0])
		if shown = waitItems(t, tab, len(all)); shown[0].Data != markup {
			t.Errorf("markup shown as %q", shown[0].Data)
		}
		if n := evalJS[int](t, tab, `document.querySelectorAll('#events img').length`); n != 0 || evalJS[string](t, tab, `document.title`) != "feedd" {
			t.Error("event data was rendered as HTML")
		}
		lastID := strconv.FormatInt(all[len(all)-1].ID, 10)
		if got := evalJS[string](t, tab, `localStorage.getItem('feedd:lastEventId:alice') || ''`); got != lastID {
			t.Errorf("stored last id %q, want %s", got, lastID)
		}

		// A reload renders the history up to the stored id and resumes the
		// feed after it: nothing is shown twice or replayed.
		if err := chromedp.Do(tab, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		waitJS(t, tab, `document.body.dataset.state === 'open'`, "the reloaded page to show the feed open")
		if d := evalJS[string](t, tab, `document.getElementById('detail').textContent`); !strings.Contains(d, "Resumed after id "+lastID) {
			t.Errorf("after the reload the page says %q, want it to resume after id %s", d, lastID)
		}
		again := s.post(t, `{"user":"alice","data":"after the reload"}`)[0]
		shown = waitItems(t, tab, len(all)+1)
		if len(shown) != len(all)+1 {
			t.Errorf("after the reload the page lists %d events, want %d", len(shown), len(all)+1)
		}
		if shown[0].ID != strconv.FormatInt(again.ID, 10) || shown[0].Source != "live" {
			t.Errorf("after the reload the newest item is %+v, want live id %d", shown[0], again.ID)
		}
		seen := map[string]bool{}
		for _, it := range shown[1:] {
			if seen[it.ID] || it.Source != "history" {
				t.Errorf("after the reload: item %+v (shown before: %v)", it, seen[it.ID])
			}
			seen[it.ID] = true
		}
		if live, dup := evalJS[string](t, tab, `document.getElementById('events').dataset.live`),
			evalJS[string](t, tab, `document.getElementById('events').dataset.duplicates`); live != "1" || dup != "0" {
			t.Errorf("after the reload the feed delivered %s events (%s already shown), want 1 (0)", live, dup)
		}
		errs.check(t)
	})

	t.Run("TokenExpiry", func(t *testing.T) {
		s := startServer(t, "--retry", "200ms")
		tab := newTab(t, browser)
		errs := watchPage(t, tab)
		navigate(t, tab, s.base+"/#token="+s.userToken(t, "carol", 5*time.Second))
		waitJS(t, tab, `document.body.dataset.state === 'open'`, "the page to show the feed open")
		waitJS(t, tab, `document.body.dataset.state === 'expired'`, "the page to show the token expired")
		want := "token expired — get a new token (feedd token --sub carol) and reload with #token=..."
		if d := evalJS[string](t, tab, `document.getElementById('detail').textContent`); d != want {
			t.Errorf("the page says %q, want %q", d, want)
		}
		if !regexp.MustCompile(`feedd_feeds_closed_total\{reason="token_expired"\} [1-9]`).MatchString(metricsText(t, s)) {
			t.Error("the server did not end the feed for its expired token")
		}

		// A page opened with a token long expired says so too: the server
		// refuses it with 401.
		navigate(t, tab, s.base+"/#token="+mintAt(t, s, "carol", time.Hour, time.Now().Add(-2*time.Hour)))
		waitJS(t, tab, `document.body.dataset.state === 'expired'`, "the page to show the old token expired")
		errs.check(t)
	})

	t.Run("RefusedFeed", func(t *testing.T) {
		s := startServer(t, "--max-conns-per-user", "1")
		tok := s.userToken(t, "dave", time.Hour)
		first := s.openFeed(t, "token="+tok, nil) // dave's one feed
		defer first.cancel()
		tab := newTab(t, browser)
		errs := watchPage(t, tab)
		navigate(t, tab, s.base+"/#token="+tok)
		waitJS(t, tab, `document.body.dataset.state === 'closed'`, "the page to show the feed closed")
		if d := evalJS[string](t, tab, `document.getElementById('detail').textContent`); !strings.Contains(d, "429") || !strings.Contains(d, "maximum number of open feeds") {
			t.Errorf("the page gives as the reason %q", d)
		}
		if evalJS[bool](t, tab, `document.getElementById('reconnect').hidden`) {
			t.Errorf("no Reconnect button; page: %s", evalJS[string](t, tab, `document.body.innerText`))
		}
		errs.check(t)
	})

	t.Run("CORS", func(t *testing.T) {
		other := httptest.NewServer(probePage())
		t.Cleanup(other.Close)
		allowed := startServer(t, "--cors-origins", other.URL, "--poll-interval", "20ms")
		denied := startServer(t, "--poll-interval", "20ms")

		tab := newTab(t, browser)
		navigate(t, tab, other.URL+"/#"+url.QueryEscape(allowed.base+"/events?token="+allowed.userToken(t, "alice", time.Hour)))
		waitJS(t, tab, `probe.opens > 0`, "the cross-origin feed to open")
		allowed.post(t, `{"user":"alice","data":"across origins"}`)
		waitJS(t, tab, `probe.data.length > 0`, "the cross-origin event")
		if d := evalJS[string](t, tab, `probe.data[0]`); d != "across origins" {
			t.Errorf("cross-origin data %q", d)
		}

		tab2 := newTab(t, browser)
		navigate(t, tab2, other.URL+"/#"+url.QueryEscape(denied.base+"/events?token="+denied.userToken(t, "alice", time.Hour)))
		waitJS(t, tab2, `probe.errors > 0 && probe.es.readyState === EventSource.CLOSED`, "the browser to refuse the cross-origin feed")
		if n := evalJS[int](t, tab2, `probe.opens`); n != 0 {
			t.Errorf("without --cors-origins a page from another origin opened the feed %d times", n)
		}
	})
}

// startBrowser starts the system's Chromium headless with a fresh profile
// and returns a context for it; tabs are opened with newTab.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findBrowser(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		// Without these Chromium keeps trying to reach Google's services.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser, which lives as long as the
	// context given to it: not a shorter one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	t.Logf("browser: %s", path)
	return ctx
}

// findBrowser returns the path of a Chromium-based browser, or skips the
// test when there is none, unless in CI, where a missing browser fails it.
func findBrowser(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("no Chromium found on PATH (looked for %s); install one (Debian: apt-get install -y chromium) to run the browser tests",
		strings.Join(names, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newTab opens a tab, closed when the test ends.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tab, cancelTimeout := context.WithTimeout(tab, 45*time.Second)
	t.Cleanup(cancelTimeout)
	return tab
}

func navigate(t *testing.T, tab context.Context, u string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Navigate(u)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
}

// evalJS evaluates a JavaScript expression in the tab's page.
func evalJS[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition until it holds. It does not use
// chromedp.Poll, whose page function needs eval, which the demo page's
// Content-Security-Policy forbids.
func waitJS(t *testing.T, tab context.Context, cond, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * waitLong)
	expr := "(() => { try { return !!(" + cond + "); } catch (e) { return false; } })()"
	for {
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ''`))
			t.Fatalf("waited %s for %s (%s): %v\npage text:\n%s", 2*waitLong, what, cond, err, state)
		}
		time.Sleep(25 * time.Millisecond) // a polling interval, not a wait for an outcome
	}
}

// recorderJS opens an EventSource and records what it delivers in
// window[name]: opens, errors and the events of the types listened for.
const recorderJS = `((name, url, types) => {
	const r = { opens: 0, errors: 0, events: [] };
	r.es = new EventSource(url);
	r.es.onopen = () => { r.opens++; };
	r.es.onerror = () => { r.errors++; };
	const keep = (e) => r.events.push({ id: e.lastEventId, type: e.type, data: e.data });
	for (const t of ['message', ...types]) r.es.addEventListener(t, keep);
	window[name] = r;
	return true;
})(%s, %s, %s)`

func openRecorder(t *testing.T, tab context.Context, path string, types ...string) {
	t.Helper()
	openRecorderAs(t, tab, "rec", path, types...)
}

func openRecorderAs(t *testing.T, tab context.Context, name, path string, types ...string) {
	t.Helper()
	if types == nil {
		types = []string{}
	}
	evalJS[bool](t, tab, fmt.Sprintf(recorderJS, jsValue(t, name), jsValue(t, path), jsValue(t, types)))
}

func jsValue(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// browserEvent is an event as the page's EventSource delivered it.
type browserEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// waitEvents waits until the recorder holds n events and returns them.
func waitEvents(t *testing.T, tab context.Context, n int) []browserEvent {
	t.Helper()
	waitJS(t, tab, fmt.Sprintf("rec.events.length >= %d", n), fmt.Sprintf("%d events in the browser", n))
	return evalJS[[]browserEvent](t, tab, `rec.events`)
}

// pageItem is an event as the demo page lists it.
type pageItem struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Source string `json:"source"`
	Data   string `json:"data"`
}

// waitItems waits until the demo page lists n events and returns them,
// newest first as the page shows them.
func waitItems(t *testing.T, tab context.Context, n int) []pageItem {
	t.Helper()
	const items = `document.querySelectorAll('#events li[data-id]')`
	waitJS(t, tab, fmt.Sprintf("%s.length >= %d", items, n), fmt.Sprintf("%d events on the page", n))
	return evalJS[[]pageItem](t, tab, `[...`+items+`].map((li) => ({
		id: li.dataset.id, type: li.querySelector('.type').textContent,
		source: li.dataset.source, data: li.querySelector('.data').textContent }))`)
}

// pageErrors collects the uncaught exceptions and console errors of a tab.
type pageErrors struct {
	mu   sync.Mutex
	msgs []string
}

func watchPage(t *testing.T, tab context.Context) *pageErrors {
	t.Helper()
	p := &pageErrors{}
	err := chromedp.Listen(tab, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			msg = "console.error"
			for _, a := range ev.Args {
				msg += " " + string(a.Value) + a.Description
			}
		default:
			return
		}
		p.mu.Lock()
		p.msgs = append(p.msgs, msg)
		p.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// check fails the test if the page threw or logged an error.
func (p *pageErrors) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.msgs {
		t.Errorf("page error: %s", m)
	}
}

// screenshots saves the demo page as a desktop and a phone would show it,
// and, with FEEDD_UPDATE_SCREENSHOT=1, updates docs/demo.png for README.md.
func screenshots(t *testing.T, tab context.Context) {
	t.Helper()
	desktop, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := chromedp.Do(tab, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	phone, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1000, 900)); err != nil {
		t.Fatal(err)
	}
	for _, shot := range []struct {
		name string
		png  []byte
	}{{"feedd-demo.png", desktop}, {"feedd-demo-phone.png", phone}} {
		path := filepath.Join(os.TempDir(), shot.name)
		if err := os.WriteFile(path, shot.png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the demo page: %s", path)
	}
	if os.Getenv("FEEDD_UPDATE_SCREENSHOT") == "1" {
		path, err := filepath.Abs(filepath.Join("..", "..", "docs", "demo.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, desktop, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", path)
	}
}

// mintAt mints a user token as if at now, to make one already expired.
func mintAt(t *testing.T, s *testServer, sub string, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, err := s.signer.Mint(sub, ttl, false, "", "", now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func metricsText(t *testing.T, s *testServer) string {
	t.Helper()
	status, b := s.do(t, http.MethodGet, "/metrics", "", "")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", status)
	}
	return string(b)
}

// probePage is a page of another origin that opens the feed URL in its
// fragment and records in window.probe whether it opened and what came.
func probePage() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>another origin</title><script src="/probe.js"></script>`)
	})
	mux.HandleFunc("GET /probe.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `const probe = { opens: 0, errors: 0, data: [] };
probe.es = new EventSource(decodeURIComponent(location.hash.slice(1)));
probe.es.onopen = () => { probe.opens++; };
probe.es.onerror = () => { probe.errors++; };
probe.es.onmessage = (e) => { probe.data.push(e.data); };
window.probe = probe;
`)
	})
	return mux
}
