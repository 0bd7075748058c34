package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// secretText stands for a token or other text a client sent: it must not
// come back in an answer or reach a log.
const secretText = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJlLW9mLWEtdG9rZW4"

func TestRedactQuery(t *testing.T) {
	long := strings.Repeat("9", 21)
	for _, tc := range []struct{ raw, want string }{
		{"", ""},
		{"token=" + secretText, "token=REDACTED"},
		{"%74oken=" + secretText, "token=REDACTED"},
		{"last_event_id=12&lastEventId=0&after=3&before=4&limit=100", "last_event_id=12&lastEventId=0&after=3&before=4&limit=100"},
		{"after=" + secretText + "&limit=" + long, "after=REDACTED&limit=REDACTED"},
		{"types=a.b,c:d,e-f_g", "types=a.b%2Cc%3Ad%2Ce-f_g"},
		{"types=" + secretText, "types=REDACTED"},
		{"types=a," + strings.Repeat("t", 65), "types=REDACTED"},
		{"user=alice&user=" + secretText, "user=alice&user=REDACTED"},
		{"user=b%C3%B6b", "user=b%C3%B6b"},
		{"user=a%00b", "user=REDACTED"},
		{"zzz=" + secretText, "zzz=REDACTED"},
		{secretText + "=1", "REDACTED=REDACTED"},
		{"a%20b=1", "REDACTED=REDACTED"},
		{"bad=%zz&%zz=1", "bad=REDACTED&REDACTED=REDACTED"},
		{"token=" + secretText + ";x=1", "token=REDACTED"},
		{"&&limit=5&", "limit=5"},
		{strings.Repeat("a=1&", 12) + "token=" + secretText, strings.Repeat("a=REDACTED&", 9) + "a=REDACTED&[3 more]"},
	} {
		if got := redactQuery(tc.raw); got != tc.want {
			t.Errorf("redactQuery(%.60q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestMethodLabel(t *testing.T) {
	for in, want := range map[string]string{
		"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE",
		"OPTIONS": "OPTIONS", "CONNECT": "CONNECT", "TRACE": "TRACE",
		"get": "other", "BREW": "other", secretText: "other", "": "other",
	} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%.20q) = %q, want %q", in, got, want)
		}
	}
}

// TestDecodeErrorsRepeatNoClientText checks the messages of every way a
// body can fail to decode: they help (they name plain field names and
// where the problem is), and repeat nothing else the client sent.
func TestDecodeErrorsRepeatNoClientText(t *testing.T) {
	type batch struct {
		Notifications *[]notification `json:"notifications"`
	}
	for _, tc := range []struct {
		name, body string
		into       any
		want       string
	}{
		{"unknown plain field", `{"user":"a","data":1,"colour":1}`, &notification{}, `invalid JSON: unknown field "colour"`},
		{"unknown field that is a token", `{"user":"a","data":1,"` + secretText + `":1}`, &notification{}, "invalid JSON: an unknown field"},
		{"unknown field with odd characters", `{"user":"a","data":1,"a b":1}`, &notification{}, "invalid JSON: an unknown field"},
		{"case-folded field", `{"USER` + "\u212a" + `":"a","data":1}`, &notification{}, "invalid JSON: an unknown field"},
		{"case-folded plain field", `{"User":"a","data":1}`, &notification{}, `unknown field "User" (field names are case-sensitive: use "user")`},
		{"unknown field in an item", `{"notifications":[{"data":1,"` + secretText + `":1}]}`, &batch{}, "invalid JSON: an unknown field in notifications[0]"},
		{"unknown field after a type error", `{"notifications":{"x":1},"` + secretText + `":1}`, &batch{}, `field "notifications" must be an array, not object`},
		{"type error", `{"broadcast":"` + secretText + `","data":1}`, &notification{}, `field "broadcast" must be true or false, not string`},
		{"number that does not fit", `{"user":"a","data":1,"broadcast":1` + strings.Repeat("0", 400) + `}`, &notification{}, `field "broadcast" must be true or false, not number`},
		{"syntax error", `{"user":"a","data":` + secretText + `}`, &notification{}, "invalid JSON: unexpected character looking for beginning of value at byte 20"},
		{"syntax error in a number", `{"user":"a","data":1` + secretText + `}`, &notification{}, "invalid JSON: unexpected character in exponent of numeric literal"},
		{"quote as the character", `{"user":"a","data":'x'}`, &notification{}, "invalid JSON: unexpected character looking for beginning of value"},
		{"space as the character", `{"user":"a","data":tr ue}`, &notification{}, "invalid JSON: unexpected character in literal true (expecting 'u')"},
		{"cut short", `{"user":"a","data":"` + secretText, &notification{}, "invalid JSON: the body ends in the middle of a value"},
		{"data after the object", `{"user":"a","data":1}` + secretText, &notification{}, "invalid JSON: unexpected data after the object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/admin/notifications", strings.NewReader(tc.body))
			err := decodeJSON(nil, r, tc.into, 1<<20)
			if err == nil {
				t.Fatal("decoded")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "ignatur") || strings.Contains(msg, "c2") || strings.Contains(msg, "000000") || strings.Contains(msg, "\u212a") {
				t.Errorf("error %q repeats what the client sent", msg)
			}
		})
	}
}

func TestUsersListedTwice(t *testing.T) {
	var n notification
	if err := json.Unmarshal([]byte(`{"users":["a","`+secretText+`","b","`+secretText+`"],"data":1}`), &n); err != nil {
		t.Fatal(err)
	}
	_, err := n.events(Limits{}.withDefaults())
	if err == nil || err.Error() != "a user id listed twice: users[3] repeats users[1]" {
		t.Errorf("error %v, want users[3] repeats users[1]", err)
	}
}

// TestPlainName checks which names a message may repeat.
func TestPlainName(t *testing.T) {
	for name, want := range map[string]bool{
		"colour": true, "a.b-c_D9": true, strings.Repeat("x", 32): true,
		"": false, strings.Repeat("x", 33): false, "a b": false, `a"b`: false, "é": false, secretText: false,
	} {
		if got := plainName(name); got != want {
			t.Errorf("plainName(%q) = %v, want %v", name, got, want)
		}
	}
}
