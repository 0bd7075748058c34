package api

import (
	"reflect"
	"strings"
	"testing"
)

func TestCheckKeys(t *testing.T) {
	type batch struct {
		Notifications *[]notification `json:"notifications"`
	}
	single, many := reflect.TypeFor[*notification](), reflect.TypeFor[*batch]()
	for _, tc := range []struct {
		name string
		t    reflect.Type
		body string
		want string // "" = accepted; otherwise a piece of the error
	}{
		{"exact names", single, `{"user":"a","type":"t","data":{"User":1,"user":2}}`, ""},
		{"keys inside data are the sender's", single, `{"broadcast":true,"data":{"x":1,"x":2}}`, ""},
		{"capitalised field", single, `{"User":"a","data":1}`, `use "user"`},
		{"field twice", single, `{"user":"a","user":"b","data":1}`, `"user" is given twice`},
		{"unknown field", single, `{"usr":"a","data":1}`, `unknown field "usr"`},
		{"in a batch item", many, `{"notifications":[{"user":"a","data":1},{"user":"a","DATA":1}]}`, "notifications[1]"},
		{"batch key twice", many, `{"notifications":[],"notifications":[]}`, "given twice"},
		{"syntax errors are the decoder's", single, `{"user":`, ""},
		{"type errors are the decoder's", many, `{"notifications":{"user":"a"}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkKeys([]byte(tc.body), tc.t)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
