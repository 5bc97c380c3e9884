package runner

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Gateway response types: the answers API Gateway gives itself.
const (
	replyMissingToken            = "MISSING_AUTHENTICATION_TOKEN"
	replyUnauthorized            = "UNAUTHORIZED"
	replyAccessDenied            = "ACCESS_DENIED"
	replyAuthorizerFailure       = "AUTHORIZER_FAILURE"
	replyAuthorizerConfiguration = "AUTHORIZER_CONFIGURATION_ERROR"
	replyTooLarge                = "REQUEST_TOO_LARGE"
	replyBadRequest              = "BAD_REQUEST_BODY"
	replyIntegrationFailure      = "INTEGRATION_FAILURE"
	replyIntegrationTimeout      = "INTEGRATION_TIMEOUT"
)

// builtinReply is API Gateway's own default of a response type: its status
// and the x-amzn-ErrorType header it sets.
type builtinReply struct {
	status    int
	errorType string
}

var builtinReplies = map[string]builtinReply{
	replyMissingToken:            {http.StatusForbidden, "MissingAuthenticationTokenException"},
	replyUnauthorized:            {http.StatusUnauthorized, "UnauthorizedException"},
	replyAccessDenied:            {http.StatusForbidden, "AccessDeniedException"},
	replyAuthorizerFailure:       {http.StatusInternalServerError, "AuthorizerConfigurationException"},
	replyAuthorizerConfiguration: {http.StatusInternalServerError, "AuthorizerConfigurationException"},
	replyTooLarge:                {http.StatusRequestEntityTooLarge, "RequestTooLargeException"},
	replyBadRequest:              {http.StatusBadRequest, "BadRequestException"},
	// A Lambda proxy integration that fails (function error, malformed
	// answer) is a 502 with "Internal server error".
	replyIntegrationFailure: {http.StatusBadGateway, "InternalServerErrorException"},
	replyIntegrationTimeout: {http.StatusGatewayTimeout, "InternalServerErrorException"},
}

// status is the reply's StatusCode, or def when it sets none.
func (gr gatewayReply) status(def int) (int, error) {
	if len(gr.StatusCode) == 0 {
		return def, nil
	}
	var n int
	if err := json.Unmarshal(gr.StatusCode, &n); err == nil {
		return n, nil
	}
	var s string
	if err := json.Unmarshal(gr.StatusCode, &s); err != nil {
		return 0, fmt.Errorf("StatusCode %s is not a number", gr.StatusCode)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("StatusCode %q is not a number", s)
	}
	return n, nil
}

// respond writes the gateway response of type typ, as the template's
// GatewayResponses shape it (the type's own, else DEFAULT_4XX or
// DEFAULT_5XX), else as API Gateway's default: {"message": ...}. It returns
// the status written.
func (g *gateway) respond(w http.ResponseWriter, req *http.Request, requestID, typ, message string) int {
	b := builtinReplies[typ]
	gr, ok := g.replies[typ]
	if !ok {
		parent := "DEFAULT_4XX"
		if b.status >= 500 {
			parent = "DEFAULT_5XX"
		}
		gr = g.replies[parent]
		gr.StatusCode = nil // a default type shapes the answer, not its status
	}
	status, _ := gr.status(b.status) // checked by newGateway

	h := w.Header()
	h.Set("X-Amzn-Requestid", requestID)
	h.Set("X-Amzn-Errortype", b.errorType)
	h.Set("Content-Type", "application/json")
	for _, name := range slices.Sorted(maps.Keys(gr.ResponseParameters.Headers)) {
		if v, ok := headerValue(gr.ResponseParameters.Headers[name], req); ok {
			h.Set(name, v)
		}
	}
	msg := "null"
	if message != "" {
		q, _ := json.Marshal(message)
		msg = string(q)
	}
	body := `{"message":` + msg + `}`
	if tmpl, ok := responseTemplate(gr.ResponseTemplates, req); ok {
		body = strings.NewReplacer(
			"$context.error.messageString", msg,
			"$context.error.message", message,
			"$context.error.responseType", typ,
			"$context.requestId", requestID,
		).Replace(tmpl)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
	g.r.log.Info("gateway response", "type", typ, "status", status, "method", req.Method, "path", req.URL.EscapedPath(),
		"request_id", requestID)
	return status
}

// headerValue evaluates a gateway response header mapping: a 'literal', or
// method.request.header|querystring|path.<name>.
func headerValue(expr string, req *http.Request) (string, bool) {
	if len(expr) >= 2 && strings.HasPrefix(expr, "'") && strings.HasSuffix(expr, "'") {
		return expr[1 : len(expr)-1], true
	}
	if name, ok := strings.CutPrefix(expr, "method.request.header."); ok {
		v := req.Header.Get(name)
		return v, v != ""
	}
	if name, ok := strings.CutPrefix(expr, "method.request.querystring."); ok {
		v := req.URL.Query().Get(name)
		return v, v != ""
	}
	return "", false
}

// responseTemplate picks the template for the request's Accept header, else
// application/json's, else any.
func responseTemplate(tmpls map[string]string, req *http.Request) (string, bool) {
	if len(tmpls) == 0 {
		return "", false
	}
	for _, part := range strings.Split(req.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if t, ok := tmpls[mt]; ok {
			return t, true
		}
	}
	if t, ok := tmpls["application/json"]; ok {
		return t, true
	}
	return tmpls[slices.Sorted(maps.Keys(tmpls))[0]], true
}
