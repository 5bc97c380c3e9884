package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/chronicle-go/chronicle/infra/apigw"
	"github.com/chronicle-go/chronicle/infra/console"
)

// GET /console: the audit console's page. It needs no token: the page holds
// no data, and asks the API for everything with the admin's token.
//
// The page names its assets relative to itself (console/app.js), so that it
// works under any stage or base path. Where API Gateway routes /console/ to
// this resource too (the runner does), those names would not resolve: it
// is redirected to ../console, relatively.
func (q *Queries) consolePage(_ context.Context, c *apigw.Call) (apigw.Reply, error) {
	if strings.HasSuffix(c.Req.Path, "/") {
		h := console.Headers("text/plain; charset=utf-8")
		h["Location"] = "../console"
		return apigw.Reply{Status: http.StatusPermanentRedirect, Headers: h, Raw: []byte("See ../console\n")}, nil
	}
	return assetReply(console.Page)
}

// GET /console/{asset}: the page's script and style sheet.
func (q *Queries) consoleAsset(_ context.Context, c *apigw.Call) (apigw.Reply, error) {
	return assetReply(c.Params[paramAsset])
}

func assetReply(name string) (apigw.Reply, error) {
	a, ok := console.Lookup(name)
	if !ok {
		return apigw.Reply{}, &apigw.Error{Kind: apigw.NoRoute, Detail: "The console has no such file."}
	}
	return apigw.Reply{Status: http.StatusOK, Headers: console.Headers(a.ContentType), Raw: a.Body}, nil
}
