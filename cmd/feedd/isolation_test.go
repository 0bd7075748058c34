package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// isoLog is what TestIsolationMatrix published: who each event is for
// ("*" for a broadcast) and its type.
type isoLog struct {
	owner map[int64]string
	typ   map[int64]string
	ids   []int64 // every id, in order
}

// visible returns the ids user may see with after < id < before (before 0:
// no bound), limited to types when types is not nil.
func (l *isoLog) visible(user string, after, before int64, types ...string) []int64 {
	var out []int64
	for _, id := range l.ids {
		o := l.owner[id]
		if (o == user || o == "*") && id > after && (before == 0 || id < before) &&
			(types == nil || slices.Contains(types, l.typ[id])) {
			out = append(out, id)
		}
	}
	return out
}

// isoData is the data of every event: it names who the event is for, so a
// misdelivered event shows at once.
type isoData struct {
	For string `json:"for"`
	N   int    `json:"n"`
}

// isoCheck fails if an event's data is not for user or a broadcast.
func isoCheck(t *testing.T, user, id, data string) {
	t.Helper()
	var d isoData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		t.Fatalf("event %s: data %q: %v", id, data, err)
	}
	if !slices.Contains(strings.Split(d.For, "+"), user) && d.For != "*" {
		t.Fatalf("%q received event %s with data %s, which is for %q", user, id, data, d.For)
	}
}

// isoReadUntil reads f's events up to and including id last, checking each
// belongs to user, and returns their ids.
func isoReadUntil(t *testing.T, f *feedClient, user string, last int64) []int64 {
	t.Helper()
	var ids []int64
	for {
		ev := f.next(t)
		if strings.HasPrefix(ev.Type, "feed.") {
			t.Fatalf("%q got a server event %+v", user, ev)
		}
		isoCheck(t, user, ev.ID, ev.Data)
		var id int64
		fmt.Sscan(ev.ID, &id)
		ids = append(ids, id)
		if id >= last {
			return ids
		}
	}
}

// isoToken signs a token for payload with secret, as HS256.
func isoToken(secret string, payload string) string {
	b64 := base64.RawURLEncoding.EncodeToString
	signing := b64([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + b64([]byte(payload))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + b64(mac.Sum(nil))
}

func TestIsolationMatrix(t *testing.T) {
	s := startServer(t)
	const alice, bob = "alice", "bob"
	// Users whose ids look like bob's but are not bob: each is a user of its
	// own and sees only its own events and the broadcasts.
	lookalikes := []string{"bob ", "BOB", " bob", "bob\u200b", "Bob"}
	tokens := map[string]string{}
	for _, u := range append([]string{alice, bob, "carol"}, lookalikes...) {
		tokens[u] = s.userToken(t, u, time.Hour)
	}

	// Live feeds, opened before anything is published.
	live := map[string]*feedClient{}
	for _, u := range append([]string{alice, bob}, lookalikes...) {
		live[u] = s.openFeed(t, "token="+tokens[u], nil)
	}

	log := &isoLog{owner: map[int64]string{}, typ: map[int64]string{}}
	publish := func(body string, owner string) (ids []int64) {
		for _, e := range s.post(t, body) {
			ids = append(ids, e.ID)
			log.ids = append(log.ids, e.ID)
			log.owner[e.ID], log.typ[e.ID] = owner, e.Type
			if e.User != "" {
				log.owner[e.ID] = e.User
			}
		}
		return ids
	}
	for i := range 3 {
		publish(fmt.Sprintf(`{"user":"bob","type":"bob.secret","data":{"for":"bob","n":%d}}`, i), bob)
		publish(fmt.Sprintf(`{"user":"alice","type":"note","data":{"for":"alice","n":%d}}`, i), alice)
		publish(fmt.Sprintf(`{"user":"bob","data":{"for":"bob","n":%d}}`, 10+i), bob)
		publish(fmt.Sprintf(`{"users":["bob","carol"],"type":"team","data":{"for":"bob+carol","n":%d}}`, i), "")
		publish(fmt.Sprintf(`{"broadcast":true,"type":"news","data":{"for":"*","n":%d}}`, i), "*")
	}
	publish(`{"user":"alice","type":"bob.secret","data":{"for":"alice","n":99}}`, alice)
	publish(`{"user":"bob","type":"bob.secret","data":{"for":"bob","n":99}}`, bob)
	for _, u := range lookalikes {
		publish(fmt.Sprintf(`{"user":%q,"data":{"for":%q}}`, u, u), u)
	}
	publish(`{"broadcast":true,"type":"end","data":{"for":"*","n":100}}`, "*")
	marker := log.ids[len(log.ids)-1]
	bobs := log.visible(bob, 0, 0)
	bobsOwn := slices.DeleteFunc(slices.Clone(bobs), func(id int64) bool { return log.owner[id] != bob })

	t.Run("live feeds", func(t *testing.T) {
		for u, f := range live {
			if got, want := isoReadUntil(t, f, u, marker), log.visible(u, 0, 0); !slices.Equal(got, want) {
				t.Errorf("%q's live feed carried %v, want %v", u, got, want)
			}
			f.cancel()
		}
	})

	t.Run("replay from 0", func(t *testing.T) {
		for _, u := range append([]string{alice}, lookalikes...) {
			f := s.openFeed(t, "token="+tokens[u]+"&last_event_id=0", nil)
			if got, want := isoReadUntil(t, f, u, marker), log.visible(u, 0, 0); !slices.Equal(got, want) {
				t.Errorf("%q's replay from 0 carried %v, want %v", u, got, want)
			}
			f.cancel()
		}
	})

	t.Run("cursor at bob's ids", func(t *testing.T) {
		for _, id := range bobsOwn {
			for _, c := range []struct {
				query  string
				header http.Header
			}{
				{fmt.Sprintf("token=%s&last_event_id=%d", tokens[alice], id), nil},
				{fmt.Sprintf("token=%s&lastEventId=%d", tokens[alice], id), nil},
				{"token=" + tokens[alice], http.Header{"Last-Event-ID": {fmt.Sprint(id)}}},
			} {
				f := s.openFeed(t, c.query, c.header)
				want := log.visible(alice, id, 0)
				if got := isoReadUntil(t, f, alice, marker); !slices.Equal(got, want) {
					t.Errorf("alice resuming at bob's event %d (%v) got %v, want %v", id, c.header, got, want)
				}
				f.cancel()
			}
		}
	})

	t.Run("types naming bob's type", func(t *testing.T) {
		for _, q := range []string{"types=bob.secret&last_event_id=0", "types=bob.secret,team,message&last_event_id=0"} {
			f := s.openFeed(t, "token="+tokens[alice]+"&"+q, nil)
			types := strings.Split(strings.TrimSuffix(strings.TrimPrefix(q, "types="), "&last_event_id=0"), ",")
			want := log.visible(alice, 0, 0, types...)
			// The last of alice's bob.secret events ends the read.
			if got := isoReadUntil(t, f, alice, want[len(want)-1]); !slices.Equal(got, want) {
				t.Errorf("alice with %s got %v, want %v", q, got, want)
			}
			next := publish(`{"user":"alice","type":"bob.secret","data":{"for":"alice","n":101}}`, alice)[0]
			publish(`{"user":"bob","type":"bob.secret","data":{"for":"bob","n":101}}`, bob)
			publish(`{"user":"alice","type":"note","data":{"for":"alice","n":102}}`, alice)
			last := publish(`{"user":"alice","type":"bob.secret","data":{"for":"alice","n":103}}`, alice)[0]
			if got := isoReadUntil(t, f, alice, last); !slices.Equal(got, []int64{next, last}) {
				t.Errorf("alice with %s then got %v live, want %v", q, got, []int64{next, last})
			}
			f.cancel()
		}
	})

	t.Run("history with bob's ids as cursors", func(t *testing.T) {
		history := func(user, query string) []int64 {
			t.Helper()
			p := getPage(t, s, "/v1/notifications?"+query, tokens[user])
			for _, e := range p.Events {
				isoCheck(t, user, fmt.Sprint(e.ID), string(e.Data))
				if e.User != "" && e.User != user {
					t.Fatalf("%q's history holds event %d of %q", user, e.ID, e.User)
				}
			}
			return eventIDs(p.Events)
		}
		for _, u := range append([]string{alice}, lookalikes...) {
			if got, want := history(u, "limit=1000"), log.visible(u, 0, 0); !slices.Equal(got, want) {
				t.Errorf("%q's history %v, want %v", u, got, want)
			}
		}
		for _, id := range bobsOwn {
			for _, c := range []struct {
				query         string
				after, before int64
			}{
				{fmt.Sprintf("after=%d", id), id, 0},
				{fmt.Sprintf("before=%d", id), 0, id},
				{fmt.Sprintf("after=%d&before=%d", id-1, id+1), id - 1, id + 1},
				{fmt.Sprintf("after=%d&limit=1", id), id, 0},
			} {
				want := log.visible(alice, c.after, c.before)
				if strings.Contains(c.query, "limit=1") {
					want = want[:min(1, len(want))]
				}
				if got := history(alice, c.query); !slices.Equal(got, want) {
					t.Errorf("alice's history with %s is %v, want %v", c.query, got, want)
				}
			}
		}
	})

	t.Run("forged and foreign tokens", func(t *testing.T) {
		now := time.Now().Unix()
		claims := func(extra string) string {
			return fmt.Sprintf(`{%s"iat":%d,"exp":%d}`, extra, now, now+3600)
		}
		good := tokens[alice]
		parts := strings.Split(good, ".")
		b64 := base64.RawURLEncoding.EncodeToString
		other := "another-secret-another-secret-0123456789"
		forged := map[string]string{
			"sub changed to bob, alice's signature":   parts[0] + "." + b64([]byte(claims(`"sub":"bob",`))) + "." + parts[2],
			"sub changed, payload padded":             parts[0] + "." + b64([]byte(claims(`"sub":"bob",`))) + "==." + parts[2],
			"bob signed with another secret":          isoToken(other, claims(`"sub":"bob",`)),
			"no sub":                                  isoToken(testSecret, claims("")),
			"empty sub":                               isoToken(testSecret, claims(`"sub":"",`)),
			"sub as a list":                           isoToken(testSecret, claims(`"sub":["bob"],`)),
			"sub as a number":                         isoToken(testSecret, claims(`"sub":7,`)),
			"sub with a control character":            isoToken(testSecret, claims(`"sub":"bob\u0000",`)),
			"no exp":                                  isoToken(testSecret, fmt.Sprintf(`{"sub":"bob","iat":%d}`, now)),
			"alg none for bob":                        b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(claims(`"sub":"bob",`))) + ".",
			"HS512 header on alice's HS256 signature": b64([]byte(`{"alg":"HS512","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2],
		}
		for name, tok := range forged {
			for _, path := range []string{"/events?token=" + tok, "/events?token=" + tok + "&last_event_id=0", "/v1/notifications?token=" + tok} {
				status, _, body, err := hostileGet(s, path, nil)
				if err != nil || status != http.StatusUnauthorized {
					t.Errorf("%s, GET %s: %d %.200s %v, want 401", name, path[:strings.Index(path, "?")], status, body, err)
				}
			}
			status, _, body, err := hostileGet(s, "/v1/notifications", http.Header{"Authorization": {"Bearer " + tok}})
			if err != nil || status != http.StatusUnauthorized {
				t.Errorf("%s in the header: %d %.200s %v, want 401", name, status, body, err)
			}
		}
		// The same claims signed with the right secret are bob's token:
		// the forgeries failed on their signatures, not on their shape.
		if p := getPage(t, s, "/v1/notifications?limit=1000", isoToken(testSecret, claims(`"sub":"bob",`))); !slices.Equal(eventIDs(p.Events), log.visible(bob, 0, 0)) {
			t.Errorf("a well-signed token for bob lists %v, want %v", eventIDs(p.Events), log.visible(bob, 0, 0))
		}
	})

	t.Run("admin endpoints with a user token", func(t *testing.T) {
		id := bobsOwn[0]
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/admin/notifications", ""},
			{"GET", "/admin/notifications?user=bob", ""},
			{"GET", fmt.Sprint("/admin/notifications/", id), ""},
			{"DELETE", fmt.Sprint("/admin/notifications/", id), ""},
			{"POST", "/admin/notifications", `{"user":"bob","data":{"for":"bob"}}`},
			{"POST", "/admin/notifications/batch", `{"notifications":[{"user":"bob","data":{"for":"bob"}}]}`},
		} {
			status, body := s.do(t, c.method, c.path, tokens[alice], c.body)
			wantError(t, status, body, http.StatusForbidden)
			if strings.Contains(string(body), `"for":"bob"`) {
				t.Errorf("%s %s with alice's token answered bob's data: %s", c.method, c.path, body)
			}
		}
		if status, body := s.do(t, http.MethodGet, fmt.Sprint("/admin/notifications/", id), s.adminToken(t), ""); status != http.StatusOK {
			t.Errorf("bob's event %d after alice's DELETE: %d %s", id, status, body)
		}
	})
}
