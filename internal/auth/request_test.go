package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name       string
		header     []string
		query      string
		allowQuery bool
		want       string
		wantErr    error
	}{
		{name: "bearer header", header: []string{"Bearer abc.def.ghi"}, allowQuery: true, want: "abc.def.ghi"},
		{name: "bearer header, admin", header: []string{"Bearer abc.def.ghi"}, want: "abc.def.ghi"},
		{name: "scheme case-insensitive", header: []string{"bEaReR abc"}, allowQuery: true, want: "abc"},
		{name: "extra spaces", header: []string{"  Bearer   abc  "}, want: "abc"},
		{name: "query", query: "token=q.q.q", allowQuery: true, want: "q.q.q"},
		{name: "header wins over query", header: []string{"Bearer h"}, query: "token=q", allowQuery: true, want: "h"},
		{name: "query ignored for admin", query: "token=q", wantErr: ErrNoToken},
		{name: "nothing", allowQuery: true, wantErr: ErrNoToken},
		{name: "empty query value", query: "token=", allowQuery: true, wantErr: ErrNoToken},
		{name: "two query tokens", query: "token=a&token=b", allowQuery: true, wantErr: ErrTooManyTokens},
		{name: "two headers", header: []string{"Bearer a", "Bearer b"}, allowQuery: true, wantErr: ErrTooManyTokens},
		{name: "bearer without token", header: []string{"Bearer"}, allowQuery: true, wantErr: ErrAuthHeader},
		{name: "bearer with spaces in token", header: []string{"Bearer a b"}, allowQuery: true, wantErr: ErrAuthHeader},
		{name: "basic without query", header: []string{"Basic dXNlcjpwdw=="}, allowQuery: true, wantErr: ErrAuthHeader},
		{name: "basic for admin", header: []string{"Basic dXNlcjpwdw=="}, wantErr: ErrAuthHeader},
		{name: "basic falls back to query", header: []string{"Basic dXNlcjpwdw=="}, query: "token=q", allowQuery: true, want: "q"},
		{name: "bare token", header: []string{"abc.def.ghi"}, allowQuery: true, wantErr: ErrAuthHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/events?"+tc.query, nil)
			for _, h := range tc.header {
				r.Header.Add("Authorization", h)
			}
			got, err := TokenFromRequest(r, tc.allowQuery)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("token = %q, want %q", got, tc.want)
			}
		})
	}
}
