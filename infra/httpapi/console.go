package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/chronicle-go/chronicle/infra/console"
)

// GET /console: the audit console's page. It needs no token: the page holds
// no data, and asks the API for everything with the admin's token.
//
// The page names its assets relative to itself (console/app.js), so that it
// works under any stage or base path. Where API Gateway routes /console/ to
// this resource too (the runner does), those names would not resolve: it
// is redirected to ../console, relatively.
func (q *Queries) consolePage(_ context.Context, c *call) (reply, error) {
	if strings.HasSuffix(c.req.Path, "/") {
		h := console.Headers("text/plain; charset=utf-8")
		h["Location"] = "../console"
		return reply{status: http.StatusPermanentRedirect, headers: h, raw: []byte("See ../console\n")}, nil
	}
	return assetReply(console.Page)
}

// GET /console/{asset}: the page's script and style sheet.
func (q *Queries) consoleAsset(_ context.Context, c *call) (reply, error) {
	return assetReply(c.params[paramAsset])
}

func assetReply(name string) (reply, error) {
	a, ok := console.Lookup(name)
	if !ok {
		return reply{}, &edgeError{kind: errNoRoute, detail: "The console has no such file."}
	}
	return reply{status: http.StatusOK, headers: console.Headers(a.ContentType), raw: a.Body}, nil
}
