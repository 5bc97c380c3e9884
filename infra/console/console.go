// Package console holds the audit console: a page for admins, served by the
// API itself (GET /console/ and its assets), that answers "who deleted my
// user?" and its neighbours (the timeline of a user with a diff per event,
// the state at each version, what-if, an actor's activity, the projections)
// through the public API with the admin's bearer token.
//
// The page holds no data and no secret: it is plain HTML, CSS and a
// JavaScript module embedded in the binary (no build step, no CDN, works
// offline), served without the authorizer under a strict Content Security
// Policy (no inline script or style, no other origin).
package console

import (
	"embed"
	"io/fs"
	"mime"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// Page is the asset served at the console's root.
const Page = "index.html"

// CSP is the Content-Security-Policy of every console answer: scripts,
// styles and API calls from the page's own origin only, no inline code, no
// frames, no forms posted anywhere, no <base>.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

// Asset is one embedded file, ready to answer.
type Asset struct {
	Body        []byte
	ContentType string
}

// Lookup returns the asset of that name: a flat file name such as "app.js".
// Names with a path separator, or that start with a dot, are not assets.
func Lookup(name string) (Asset, bool) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return Asset{}, false
	}
	b, err := fs.ReadFile(static, "static/"+name)
	if err != nil {
		return Asset{}, false
	}
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) { // the system's MIME table may lack or differ on these
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".html":
		ct = "text/html; charset=utf-8"
	case ".svg":
		ct = "image/svg+xml"
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	return Asset{Body: b, ContentType: ct}, true
}

// Names lists the assets.
func Names() []string {
	entries, err := fs.ReadDir(static, "static")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// Headers are the headers of a console answer of content type ct: the
// policy, no sniffing, no referrer (the URL's fragment may hold a token,
// which browsers never send, but the path is nobody else's business), and
// revalidation, so that a deployment's new page replaces the old at once.
func Headers(ct string) map[string]string {
	return map[string]string{
		"Content-Type":            ct,
		"Content-Security-Policy": CSP,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-cache",
	}
}
