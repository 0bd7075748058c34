package api

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
)

// tooLargeRoute is the route logs and metrics give a request whose line and
// headers are over the limit.
const tooLargeRoute = "header too large"

// listener wraps ln so that the requests net/http refuses before any
// handler sees them get an access-log line and a count too: a request line
// and headers over http.Server.MaxHeaderBytes, which net/http answers with
// 431 by itself. Over TLS (ServeTLS wraps the connections) they are not
// seen.
func (s *Server) listener(ln net.Listener) net.Listener {
	return &loggedListener{Listener: ln, s: s}
}

type loggedListener struct {
	net.Listener
	s *Server
}

// Accept returns the next connection, watched for net/http's own answers.
func (l *loggedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &loggedConn{Conn: c, s: l.s}, nil
}

// tooLarge is how net/http's answer to a request over MaxHeaderBytes
// starts; it writes it straight to the connection, in one write. No
// handler of feedd answers 431.
var tooLarge = []byte("HTTP/1.1 431 ")

// loggedConn is an accepted connection watched for net/http's 431.
type loggedConn struct {
	net.Conn
	s *Server
}

func (c *loggedConn) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, tooLarge) {
		status := http.StatusRequestHeaderFieldsTooLarge
		c.s.log.Info("request", "method", "other", "route", tooLargeRoute, "status", status, "remote", c.RemoteAddr().String())
		c.s.metrics.requests.WithLabelValues(tooLargeRoute, "other", strconv.Itoa(status)).Inc()
	}
	return c.Conn.Write(p)
}

// CloseWrite half-closes the connection, as net/http does after a 431, where
// the connection can.
func (c *loggedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
