package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/chronicle-go/chronicle/infra/lambdafn"
	"github.com/chronicle-go/chronicle/infra/template"
)

// plan is what the template asks the runner to serve.
type plan struct {
	functions      []template.Function
	tables         []template.Table
	queues         []template.Queue // dead-letter queues before the queues that use them
	routes         []route
	stage          string
	apiID          string // logical id of the API
	throttle       template.Throttle
	gatewayReplies map[string]gatewayReply
	queueMappings  []queueMapping
	streamMappings []streamMapping
}

// route is one method on one path of the API, served by a function.
type route struct {
	method   string // upper case, or "ANY"
	path     string // template path: "/users/{id}"
	segments []string
	function string // logical id
	// authorizer is the authorizer the route runs, nil for none.
	authorizer *template.Authorizer
}

// queue is the template queue with logical id id.
func (p *plan) queue(id string) template.Queue {
	for _, q := range p.queues {
		if q.Name == id {
			return q
		}
	}
	return template.Queue{}
}

func (r route) key() string { return r.method + " " + r.path }

// queueMapping is an SQS event source mapping.
type queueMapping struct {
	function string
	event    template.QueueEvent
}

// streamMapping is a DynamoDB stream event source mapping.
type streamMapping struct {
	function string
	event    template.StreamEvent
}

// codeName is the functions/<name> directory a function's code is built
// from: its logical id without the "Function" suffix, lower case
// (CommandsFunction: functions/commands), as the Makefile's
// build-<LogicalId> targets build them.
func codeName(logicalID string) string {
	return strings.ToLower(strings.TrimSuffix(logicalID, "Function"))
}

func readPlan(tpl *template.Template, path string) (*plan, error) {
	p := &plan{}
	var err error
	if p.functions, err = tpl.Functions(); err != nil {
		return nil, err
	}
	if p.tables, err = tpl.Tables(); err != nil {
		return nil, err
	}
	queues, err := tpl.Queues()
	if err != nil {
		return nil, err
	}
	if p.queues, err = dlqsFirst(queues); err != nil {
		return nil, err
	}
	apis, err := tpl.APIs()
	if err != nil {
		return nil, err
	}
	if len(apis) > 1 {
		return nil, fmt.Errorf("%d APIs: the runner serves one REST API", len(apis))
	}
	var api *template.API
	if len(apis) == 1 {
		api = &apis[0]
		p.stage, p.apiID, p.throttle = api.StageName, api.Name, api.Throttle
		if p.gatewayReplies, err = readGatewayReplies(path, api.Name); err != nil {
			return nil, err
		}
	}
	if p.stage == "" {
		p.stage = "Prod" // SAM's implicit API
	}

	tableIDs := map[string]bool{}
	for _, t := range p.tables {
		tableIDs[t.Name] = true
	}
	queueIDs := map[string]bool{}
	for _, q := range p.queues {
		queueIDs[q.Name] = true
	}
	fnIDs := map[string]bool{}
	for _, f := range p.functions {
		fnIDs[f.Name] = true
	}
	seen := map[string]string{}
	for _, f := range p.functions {
		if !slices.Contains(lambdafn.Names(), codeName(f.Name)) {
			return nil, fmt.Errorf("function %s: no functions/%s among %v", f.Name, codeName(f.Name), lambdafn.Names())
		}
		if len(f.OtherEvents) > 0 {
			return nil, fmt.Errorf("function %s: events %v are of types the runner does not serve", f.Name, f.OtherEvents)
		}
		for _, e := range f.APIEvents {
			rt := route{method: e.Method, path: e.Path, segments: splitPath(e.Path), function: f.Name}
			if rt.method == "ANY" || rt.method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
				rt.method = "ANY"
			}
			if e.API != "" && (api == nil || e.API != api.Name) {
				return nil, fmt.Errorf("function %s, event %s: API %q is not the template's REST API", f.Name, e.Name, e.API)
			}
			if api != nil && e.API != "" {
				name := api.DefaultAuthorizer
				if e.Authorizer != "" {
					name = e.Authorizer
				}
				if name != "" && name != "NONE" && name != "AWS_IAM" {
					a, ok := api.Authorizers[name]
					if !ok {
						return nil, fmt.Errorf("route %s: no authorizer %q", rt.key(), name)
					}
					if a.PayloadType != "TOKEN" {
						return nil, fmt.Errorf("route %s: authorizer %s is %s; the runner runs TOKEN authorizers", rt.key(), name, a.PayloadType)
					}
					if !fnIDs[a.Function] {
						return nil, fmt.Errorf("authorizer %s: function %q is not in the template", name, a.Function)
					}
					rt.authorizer = &a
				}
			}
			if prev, dup := seen[rt.key()]; dup {
				return nil, fmt.Errorf("route %s is served by both %s and %s", rt.key(), prev, f.Name)
			}
			seen[rt.key()] = f.Name
			p.routes = append(p.routes, rt)
		}
		for _, e := range f.QueueEvents {
			if !queueIDs[e.Queue] {
				return nil, fmt.Errorf("function %s, event %s: queue %q is not in the template", f.Name, e.Name, e.Queue)
			}
			p.queueMappings = append(p.queueMappings, queueMapping{function: f.Name, event: e})
		}
		for _, e := range f.StreamEvents {
			if !tableIDs[e.Table] {
				return nil, fmt.Errorf("function %s, event %s: table %q is not in the template", f.Name, e.Name, e.Table)
			}
			if e.OnFailure != "" && !queueIDs[e.OnFailure] {
				return nil, fmt.Errorf("function %s, event %s: on-failure destination %q is not a queue of the template", f.Name, e.Name, e.OnFailure)
			}
			p.streamMappings = append(p.streamMappings, streamMapping{function: f.Name, event: e})
		}
	}
	return p, nil
}

// dlqsFirst orders queues so that a dead-letter queue comes before the
// queues that redrive to it.
func dlqsFirst(queues []template.Queue) ([]template.Queue, error) {
	byID := map[string]template.Queue{}
	for _, q := range queues {
		byID[q.Name] = q
	}
	var out []template.Queue
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(id string) error
	visit = func(id string) error {
		switch state[id] {
		case 1:
			return fmt.Errorf("queue %s: redrive policies form a cycle", id)
		case 2:
			return nil
		}
		q, ok := byID[id]
		if !ok {
			return fmt.Errorf("dead-letter queue %q is not a queue of the template", id)
		}
		state[id] = 1
		if q.DeadLetterQueue != "" {
			if err := visit(q.DeadLetterQueue); err != nil {
				return err
			}
		}
		state[id] = 2
		out = append(out, q)
		return nil
	}
	for _, q := range queues {
		if err := visit(q.Name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// gatewayReply is one of the API's GatewayResponses.
type gatewayReply struct {
	StatusCode         json.RawMessage `json:"StatusCode"` // a number or a string
	ResponseParameters struct {
		Headers map[string]string `json:"Headers"`
	} `json:"ResponseParameters"`
	ResponseTemplates map[string]string `json:"ResponseTemplates"`
}

// readGatewayReplies reads the GatewayResponses of the API with logical id
// api from the template's raw text: infra/template's typed view leaves them
// out (goformation's schema predates their structured form).
func readGatewayReplies(path, api string) (map[string]gatewayReply, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	plain, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, err
	}
	var doc struct {
		Resources map[string]struct {
			Properties struct {
				GatewayResponses map[string]gatewayReply `json:"GatewayResponses"`
			} `json:"Properties"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal(plain, &doc); err != nil {
		return nil, fmt.Errorf("API %s: GatewayResponses: %w", api, err)
	}
	return doc.Resources[api].Properties.GatewayResponses, nil
}
