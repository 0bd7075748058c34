package main

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADMEWalkThrough replays README's "Five minutes with curl" after
// the banner's curl, as a newcomer does, and checks that the server
// answers and streams exactly what the section shows.
func TestREADMEWalkThrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## Five minutes with curl\n")
	section, _, _ = strings.Cut(section, "\n## ")
	// What the reader is shown: the blocks that are not commands.
	var shown []string
	for _, m := range regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```").FindAllStringSubmatch(section, -1) {
		if m[1] != "sh" {
			shown = append(shown, m[2])
		}
	}
	var posts []string
	for _, m := range regexp.MustCompile(`-d '([^']*)'`).FindAllStringSubmatch(section, -1) {
		posts = append(posts, m[1])
	}
	resume := regexp.MustCompile(`Last-Event-ID: ([0-9]+)`).FindStringSubmatch(section)
	if len(shown) != 4 || len(posts) != 3 || resume == nil {
		t.Fatalf("README's walk-through has %d outputs, %d posts and resume %q; want 4, 3 and a Last-Event-ID", len(shown), len(posts), resume)
	}

	s := startServer(t)
	banner := regexp.MustCompile(`Bearer ([^']+)' .* -d '([^']+)'`).FindStringSubmatch(s.stdout.String())
	if banner == nil {
		t.Fatalf("no post command in the banner:\n%s", s.stdout)
	}
	if status, body := s.do(t, http.MethodPost, "/admin/notifications", banner[1], banner[2]); status != http.StatusCreated {
		t.Fatalf("the banner's curl: %d %s", status, body)
	}
	user := "token=" + s.userToken(t, "alice", time.Hour)
	createdAt := regexp.MustCompile(`"created_at":"[^"]*"`)
	post := func(body, want string) {
		t.Helper()
		status, got := s.do(t, http.MethodPost, "/admin/notifications", s.adminToken(t), body)
		if status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", body, status, got)
		}
		if want == "" {
			return
		}
		g := createdAt.ReplaceAllString(strings.TrimSpace(string(got)), `"created_at":"T"`)
		w := createdAt.ReplaceAllString(strings.TrimSpace(want), `"created_at":"T"`)
		if g != w {
			t.Fatalf("POST %s answered\n%s\nREADME shows\n%s", body, got, want)
		}
	}

	resp, cancel := s.openRaw(t, user, nil)
	expectStream(t, resp, cancel, shown[0])
	post(posts[0], shown[1])
	expectStream(t, resp, cancel, shown[2])
	cancel()

	post(posts[1], "")
	post(posts[2], "")
	resp, cancel = s.openRaw(t, user, http.Header{"Last-Event-ID": {resume[1]}})
	defer cancel()
	expectStream(t, resp, cancel, shown[3])
}

// expectStream reads len(want) bytes of the stream and checks they are
// want; cancel ends the stream if they do not come in time.
func expectStream(t *testing.T, resp *http.Response, cancel func(), want string) {
	t.Helper()
	got := make([]byte, len(want))
	read := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(resp.Body, got)
		read <- err
	}()
	select {
	case err := <-read:
		if err != nil {
			t.Fatalf("stream: %v after %q; README shows %q", err, got, want)
		}
	case <-time.After(waitLong):
		cancel()
		<-read
		t.Fatalf("stream sent %q within %s; README shows %q", got, waitLong, want)
	}
	if string(got) != want {
		t.Fatalf("stream sent\n%s\nREADME shows\n%s", got, want)
	}
}
