package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tokenRefused asks for a feed with tok and checks the 401 an expired or
// otherwise refused token gets: WWW-Authenticate with error="invalid_token"
// and a JSON error holding want.
func tokenRefused(t *testing.T, s *testServer, what, tok, want string) {
	t.Helper()
	for _, path := range []string{"/events?token=" + tok, "/v1/notifications?token=" + tok} {
		status, h, body, err := hostileGet(s, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) || !strings.Contains(e.Error, want) {
			t.Errorf("%s: GET %s: %d, WWW-Authenticate %q, %s; want 401, invalid_token and %q",
				what, path[:strings.Index(path, "?")], status, h.Get("WWW-Authenticate"), body, want)
		}
		if strings.Contains(string(body)+h.Get("WWW-Authenticate"), tok) {
			t.Errorf("%s: the answer repeats the token", what)
		}
	}
}

// TestTokenExpiredWithinLeewayIsRefused checks that a token whose exp has
// passed is refused, even within the clock leeway (10s): a feed it opened
// would end at once, and EventSource would reconnect into the same end.
// The leeway still serves nbf and iat.
func TestTokenExpiredWithinLeewayIsRefused(t *testing.T) {
	s := startServer(t)
	expired := mintAt(t, s, "alice", time.Minute, time.Now().Add(-time.Minute-3*time.Second))
	tokenRefused(t, s, "exp 3s ago", expired, "token expired: get a new token")

	// Minted by a clock 5s ahead: iat is in the future, within the leeway.
	ahead := mintAt(t, s, "alice", time.Minute, time.Now().Add(5*time.Second))
	f := s.openFeed(t, "token="+ahead, nil)
	id := s.post(t, `{"user":"alice","data":"x"}`)[0].ID
	if got := f.nextIDs(t, 1); got[0] != id {
		t.Fatalf("feed got %v, want %d", got, id)
	}
}

// TestTokenTimeClaimsMustBeNumbers checks that exp, nbf and iat given as
// strings, or as anything but a number, are refused as malformed.
func TestTokenTimeClaimsMustBeNumbers(t *testing.T) {
	s := startServer(t)
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	past := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	for _, c := range []struct{ claim, payload string }{
		{"exp", `{"sub":"alice","exp":"` + exp + `"}`},
		{"exp", `{"sub":"alice","exp":"1999999999"}`},
		{"exp", `{"sub":"alice","exp":true}`},
		{"exp", `{"sub":"alice","exp":null}`},
		{"exp", `{"sub":"alice","exp":[` + exp + `]}`},
		{"exp", `{"sub":"alice","exp":{"t":` + exp + `}}`},
		{"nbf", `{"sub":"alice","exp":` + exp + `,"nbf":"` + past + `"}`},
		{"iat", `{"sub":"alice","exp":` + exp + `,"iat":"` + past + `"}`},
		{"iat", `{"sub":"alice","exp":` + exp + `,"iat":false}`},
	} {
		tokenRefused(t, s, c.payload, isoToken(testSecret, c.payload), "token claim "+c.claim+" must be a number (seconds since the epoch)")
	}
}

// TestTokenHugeTimes checks NumericDates beyond what a time can hold: an
// exp of 1e300 never expires (and the feed's expiry timer does not
// overflow into firing at once), a huge nbf is not valid yet, a huge iat
// issued in the future, and an exp of -1e300 expired long ago.
func TestTokenHugeTimes(t *testing.T) {
	s := startServer(t)
	for _, exp := range []string{"1e300", "1e400", "99999999999999999999"} {
		f := s.openFeed(t, "token="+isoToken(testSecret, `{"sub":"alice","exp":`+exp+`}`), nil)
		id := s.post(t, `{"user":"alice","data":"x"}`)[0].ID
		if got := f.nextIDs(t, 1); got[0] != id {
			t.Fatalf("exp %s: feed got %v, want %d", exp, got, id)
		}
		f.cancel()
	}
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	tokenRefused(t, s, "exp -1e300", isoToken(testSecret, `{"sub":"alice","exp":-1e300}`), "token expired")
	tokenRefused(t, s, "nbf 1e300", isoToken(testSecret, `{"sub":"alice","exp":`+exp+`,"nbf":1e300}`), "token not valid yet")
	tokenRefused(t, s, "iat 1e300", isoToken(testSecret, `{"sub":"alice","exp":`+exp+`,"iat":1e300}`), "token issued in the future")
}
