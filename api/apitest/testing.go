package apitest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// Validate checks x against the shared contract and marks tb failed, naming
// the route, the status and the mismatch, when it does not match. It uses
// Errorf, not Fatalf, so that it may be called from any goroutine of the test.
func Validate(tb testing.TB, x Exchange) {
	tb.Helper()
	c, err := Shared()
	if err != nil {
		tb.Errorf("%v", err)
		return
	}
	if err := c.Check(tb.Context(), x); err != nil {
		tb.Errorf("%v\nrequest headers %v, body %.500q\nanswer headers %v, body %.2000q", err, x.Request.Header, x.RequestBody, x.Header, x.Body)
	}
}

// ValidateProxy checks a REST API proxy event and the function's answer to
// it, as a handler test made them.
func ValidateProxy(tb testing.TB, req events.APIGatewayProxyRequest, resp events.APIGatewayProxyResponse) {
	tb.Helper()
	x, err := ProxyExchange(req, resp)
	if err != nil {
		tb.Errorf("OpenAPI: %s %s: %v", req.HTTPMethod, req.Path, err)
		return
	}
	Validate(tb, x)
}

// ProxyExchange is the HTTP exchange behind a REST API proxy event and the
// function's answer: the client's request as API Gateway received it, and
// the answer it returns. An event that carries an authorizer context came
// through the authorizer, so the client sent a bearer token: the request
// gets one when the event leaves the Authorization header out.
func ProxyExchange(req events.APIGatewayProxyRequest, resp events.APIGatewayProxyResponse) (Exchange, error) {
	// API Gateway routed the event by its resource and path parameters;
	// a hand-made event without a resource is routed by its path, as the
	// handlers do (a trailing slash ignored).
	target := (&url.URL{Path: req.Path}).EscapedPath()
	if req.Resource != "" {
		target = fill(req.Resource, req.PathParameters)
	} else if len(target) > 1 {
		target = strings.TrimSuffix(target, "/")
	}
	q := url.Values{}
	for k, vs := range req.MultiValueQueryStringParameters {
		q[k] = append(q[k], vs...)
	}
	for k, v := range req.QueryStringParameters {
		if _, ok := q[k]; !ok {
			q.Set(k, v)
		}
	}
	hr, err := http.NewRequest(req.HTTPMethod, target+"?"+q.Encode(), nil)
	if err != nil {
		return Exchange{}, fmt.Errorf("the event is not an HTTP request: %w", err)
	}
	hr.Header = proxyHeaders(req.Headers, req.MultiValueHeaders)
	if hr.Header.Get("Authorization") == "" && len(req.RequestContext.Authorizer) > 0 {
		hr.Header.Set("Authorization", "Bearer token-the-authorizer-verified")
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			body = []byte(req.Body) // the service refuses it; the answer is still checked
		}
	}
	out := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if out, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return Exchange{}, fmt.Errorf("the answer's body is not base64: %w", err)
		}
	}
	return Exchange{Request: hr, Resource: req.Resource, PathParams: req.PathParameters, RequestBody: body, Status: resp.StatusCode,
		Header: proxyHeaders(resp.Headers, resp.MultiValueHeaders), Body: out}, nil
}

// proxyHeaders merges API Gateway's two header maps: the multi-value one
// holds every value, the other the last of each.
func proxyHeaders(single map[string]string, multi map[string][]string) http.Header {
	h := http.Header{}
	for k, vs := range multi {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range single {
		if len(h.Values(k)) == 0 && !strings.ContainsAny(k, "\r\n") {
			h.Set(k, v)
		}
	}
	return h
}

// fill puts the path parameters into a resource template, escaped.
func fill(resource string, params map[string]string) string {
	segs := strings.Split(resource, "/")
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, "{"); ok {
			segs[i] = url.PathEscape(params[strings.TrimSuffix(name, "}")])
		}
	}
	return strings.Join(segs, "/")
}
