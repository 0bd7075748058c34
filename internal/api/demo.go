package api

import (
	"embed"
	"io/fs"
	"net/http"
)

// webFiles is the demo page: plain HTML, CSS and JavaScript, nothing loaded
// from other hosts.
//
//go:embed web
var webFiles embed.FS

// pagePolicy keeps the demo page to its own origin: its scripts, styles and
// the feed it opens.
const pagePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// page serves the demo page at / and its files under /assets/.
func page() (index, assets http.Handler) {
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(web)
	secure := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", pagePolicy)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Referrer-Policy", "no-referrer")
			h.ServeHTTP(w, r)
		})
	}
	index = secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, web, "index.html")
	}))
	return index, secure(http.StripPrefix("/assets/", files))
}
