package main

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// originHelp says what --cors-origins takes; it ends every refusal.
const originHelp = "an origin is scheme://host[:port] as a browser sends it in its Origin header, e.g. https://app.example or http://localhost:3000"

// parseOrigins splits --cors-origins and writes each origin the way a
// browser serialises it in an Origin header, which is what the server
// compares them with: lowercase scheme and host, no default port, no
// trailing slash. "*" (any origin) wins over the rest. An entry that is
// not an origin, or could mean more than one, is refused.
func parseOrigins(list string) ([]string, error) {
	var out []string
	for o := range strings.SplitSeq(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" {
			return []string{"*"}, nil
		}
		norm, problem := normalOrigin(o)
		if problem != "" {
			return nil, usagef("--cors-origins: %q %s; %s", shorten(o), problem, originHelp)
		}
		out = append(out, norm)
	}
	return out, nil
}

// normalOrigin returns o as a browser serialises it, or says what keeps it
// from being an origin.
func normalOrigin(o string) (origin, problem string) {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok {
		return "", "has no scheme (write https://" + shorten(o) + ")"
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return "", "has a scheme other than http or https"
	}
	u, err := url.Parse(scheme + "://" + rest)
	switch {
	case err != nil:
		return "", "is not a URL"
	case u.User != nil:
		return "", "has user info"
	case u.RawQuery != "" || u.ForceQuery:
		return "", "has a query"
	case u.Fragment != "" || strings.Contains(rest, "#"):
		return "", "has a fragment"
	case u.Path != "" && u.Path != "/":
		return "", "has a path"
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", "has no host"
	}
	if strings.Contains(host, ":") {
		if net.ParseIP(host) == nil {
			return "", "has a bad IPv6 address"
		}
	} else if strings.Trim(host, "abcdefghijklmnopqrstuvwxyz0123456789.-_") != "" {
		return "", "has a host with characters a browser would not send (wildcards are not supported; write an international name in its xn-- form)"
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", "has a port outside 1 to 65535"
		}
		port = strconv.Itoa(n)
	}
	if port == "443" && scheme == "https" || port == "80" && scheme == "http" {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port), ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, ""
}

// shorten returns s, cut to 100 bytes, for quoting a setting back.
func shorten(s string) string {
	const most = 100
	if len(s) <= most {
		return s
	}
	return s[:most] + "..."
}
