package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "feedd test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLSServesFeedsOverHTTP2(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s := startServer(t, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.base, "https://") {
		t.Fatalf("server announced %s, want https", s.base)
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
	defer client.CloseIdleConnections()

	// Several feeds on one connection: HTTP/2 lifts the browsers' limit of
	// six HTTP/1.1 connections per origin.
	const feeds = 8
	lines := make([]*bufio.Reader, feeds)
	for i := range feeds {
		req, _ := http.NewRequest(http.MethodGet, s.base+"/events?token="+s.userToken(t, "alice", time.Hour), nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
			t.Fatalf("feed %d: %s %d, want HTTP/2 200", i, resp.Proto, resp.StatusCode)
		}
		lines[i] = bufio.NewReader(resp.Body)
		if l, err := lines[i].ReadString('\n'); err != nil || !strings.HasPrefix(l, "retry:") {
			t.Fatalf("feed %d first line %q, %v", i, l, err)
		}
	}

	req, _ := http.NewRequest(http.MethodPost, s.base+"/admin/notifications", strings.NewReader(`{"user":"alice","data":"over h2"}`))
	req.Header.Set("Authorization", "Bearer "+s.adminToken(t))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("post over TLS: %d", resp.StatusCode)
	}
	for i, r := range lines {
		var got []string
		for len(got) < 2 {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("feed %d: %v", i, err)
			}
			if l = strings.TrimSpace(l); l != "" {
				got = append(got, l)
			}
		}
		if got[1] != "data: over h2" {
			t.Fatalf("feed %d received %q", i, got)
		}
	}
}

// A browser that does not speak HTTP/2 gets its feed over HTTP/1.1 on TLS:
// the feed goes on outside its handler, on the TLS connection.
func TestTLSServesFeedsOverHTTP1(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s := startServer(t, "--tls-cert", certFile, "--tls-key", keyFile)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(s.base + "/events?token=" + s.userToken(t, "alice", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != http.StatusOK {
		t.Fatalf("feed: %s %d, want HTTP/1.1 200", resp.Proto, resp.StatusCode)
	}
	r := bufio.NewReader(resp.Body)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "retry:") {
		t.Fatalf("first line %q, %v", l, err)
	}
	for _, data := range []string{"over TLS", "line one\nline two"} {
		req, _ := http.NewRequest(http.MethodPost, s.base+"/admin/notifications", strings.NewReader(`{"user":"alice","data":`+jsValue(t, data)+`}`))
		req.Header.Set("Authorization", "Bearer "+s.adminToken(t))
		post, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var created struct{ Events []apiEvent }
		err = json.NewDecoder(post.Body).Decode(&created)
		post.Body.Close()
		if err != nil || post.StatusCode != http.StatusCreated || len(created.Events) != 1 {
			t.Fatalf("post over TLS: %d, %v", post.StatusCode, err)
		}
		want := fmt.Sprintf("id: %d\n", created.Events[0].ID)
		for _, line := range strings.Split(data, "\n") {
			want += "data: " + line + "\n"
		}
		var got string
		for !strings.HasSuffix(got, "\n\n") {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the feed: %v (so far %q)", err, got)
			}
			if got == "" && l == "\n" {
				continue // the blank line that ends the retry field
			}
			got += l
		}
		if got != want+"\n" {
			t.Fatalf("event %q, want %q", got, want+"\n")
		}
	}
}
