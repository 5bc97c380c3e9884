package template

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/awslabs/goformation/v7/cloudformation/dynamodb"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
	"github.com/awslabs/goformation/v7/cloudformation/sqs"
)

// Resource types the helpers read.
const (
	TypeFunction = "AWS::Serverless::Function"
	TypeAPI      = "AWS::Serverless::Api"
	TypeTable    = "AWS::DynamoDB::Table"
	TypeQueue    = "AWS::SQS::Queue"
	TypeRole     = "AWS::IAM::Role"
)

// ReportBatchItemFailures is the FunctionResponseTypes value of an event
// source whose function reports the failed items of a batch.
const ReportBatchItemFailures = "ReportBatchItemFailures"

// Function is a SAM function with the template's globals applied.
type Function struct {
	Name          string // logical id
	CodeURI       string
	Handler       string
	Runtime       string
	Architectures []string
	MemorySize    int // MB
	Timeout       int // seconds
	// Role is the function's role: usually a Fn::GetAtt of an AWS::IAM::Role
	// (see Target); "" when SAM creates one from Policies.
	Role string
	// Policies is the SAM Policies property as written, nil if none.
	Policies json.RawMessage
	// Environment holds the variables, globals merged in; values may be
	// intrinsics: Resolve them.
	Environment map[string]string
	// LogGroup is LoggingConfig.LogGroup (may be an intrinsic: Resolve it);
	// "" for Lambda's default, /aws/lambda/<function name>.
	LogGroup string
	// Tracing is "Active" or "PassThrough" (Lambda's default).
	Tracing string
	// ReservedConcurrency is ReservedConcurrentExecutions, 0 when unset
	// (the function draws on the account's unreserved pool).
	ReservedConcurrency int

	APIEvents    []APIEvent
	QueueEvents  []QueueEvent
	StreamEvents []StreamEvent
	// OtherEvents names the events of other types, which the helpers do
	// not model.
	OtherEvents []string
}

// APIEvent is a route of a REST API (SAM event type Api).
type APIEvent struct {
	Name   string // event name
	API    string // logical id of the AWS::Serverless::Api; "" for SAM's implicit API
	Path   string // "/users/{id}/name"
	Method string // upper case: "PUT"
	// Authorizer is the route's own authorizer: "" for the API's default,
	// "NONE" for none.
	Authorizer string
}

// QueueEvent is an SQS event source mapping (SAM event type SQS).
type QueueEvent struct {
	Name                           string
	Queue                          string // logical id of the AWS::SQS::Queue
	BatchSize                      int    // SAM's default 10 when unset
	MaximumBatchingWindowInSeconds int
	FunctionResponseTypes          []string
	// MaximumConcurrency is ScalingConfig.MaximumConcurrency: the batches
	// Lambda runs at once for this mapping; 0 when unset.
	MaximumConcurrency int
}

// StreamEvent is a DynamoDB stream event source mapping (SAM event type DynamoDB).
type StreamEvent struct {
	Name                           string
	Table                          string // logical id of the AWS::DynamoDB::Table
	StartingPosition               string
	BatchSize                      int // SAM's default 100 when unset
	MaximumBatchingWindowInSeconds int
	MaximumRetryAttempts           int // -1 (forever) when unset
	BisectBatchOnFunctionError     bool
	FunctionResponseTypes          []string
	OnFailure                      string // logical id of the on-failure destination, if any
	// ParallelizationFactor is the number of batches of one shard in
	// flight at once (1..10; 1 when unset).
	ParallelizationFactor int
}

// ReportsBatchItemFailures says whether the function answers with the
// failed items of a batch rather than failing it whole.
func (e QueueEvent) ReportsBatchItemFailures() bool {
	return slices.Contains(e.FunctionResponseTypes, ReportBatchItemFailures)
}

// ReportsBatchItemFailures: see QueueEvent.ReportsBatchItemFailures.
func (e StreamEvent) ReportsBatchItemFailures() bool {
	return slices.Contains(e.FunctionResponseTypes, ReportBatchItemFailures)
}

// rawFunction is what Functions reads from a function's raw properties and
// from the function globals.
type rawFunction struct {
	Tracing                      string  `json:"Tracing"`
	ReservedConcurrentExecutions *number `json:"ReservedConcurrentExecutions"`
	LoggingConfig                struct {
		LogGroup string `json:"LogGroup"`
	} `json:"LoggingConfig"`
	Events map[string]struct {
		Type       string          `json:"Type"`
		Properties json.RawMessage `json:"Properties"`
	} `json:"Events"`
}

type rawAPIEvent struct {
	Path      string `json:"Path"`
	Method    string `json:"Method"`
	RestAPIID string `json:"RestApiId"`
	Auth      struct {
		Authorizer string `json:"Authorizer"`
	} `json:"Auth"`
}

type rawQueueEvent struct {
	Queue                          string   `json:"Queue"`
	BatchSize                      *number  `json:"BatchSize"`
	MaximumBatchingWindowInSeconds *number  `json:"MaximumBatchingWindowInSeconds"`
	FunctionResponseTypes          []string `json:"FunctionResponseTypes"`
	ScalingConfig                  struct {
		MaximumConcurrency *number `json:"MaximumConcurrency"`
	} `json:"ScalingConfig"`
}

type rawStreamEvent struct {
	Stream                         string   `json:"Stream"`
	StartingPosition               string   `json:"StartingPosition"`
	BatchSize                      *number  `json:"BatchSize"`
	MaximumBatchingWindowInSeconds *number  `json:"MaximumBatchingWindowInSeconds"`
	MaximumRetryAttempts           *number  `json:"MaximumRetryAttempts"`
	ParallelizationFactor          *number  `json:"ParallelizationFactor"`
	BisectBatchOnFunctionError     bool     `json:"BisectBatchOnFunctionError"`
	FunctionResponseTypes          []string `json:"FunctionResponseTypes"`
	DestinationConfig              struct {
		OnFailure struct {
			Destination string `json:"Destination"`
		} `json:"OnFailure"`
	} `json:"DestinationConfig"`
}

// ids returns the logical ids of the resources of type typ, sorted.
func (t *Template) ids(typ string) []string {
	var out []string
	for id, r := range t.raw {
		if r.Type == typ {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Functions returns the SAM functions, sorted by logical id.
func (t *Template) Functions() ([]Function, error) {
	fns := t.GetAllServerlessFunctionResources()
	var out []Function
	for _, id := range t.ids(TypeFunction) {
		f, err := t.function(id, fns[id])
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", id, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// Function returns the SAM function with logical id id.
func (t *Template) Function(id string) (Function, error) {
	fn, err := t.GetServerlessFunctionWithName(id)
	if err != nil {
		return Function{}, err
	}
	return t.function(id, fn)
}

func (t *Template) function(id string, fn *serverless.Function) (Function, error) {
	// Lambda's defaults, then the globals, then the function's own properties.
	f := Function{Name: id, MemorySize: 128, Timeout: 3, Environment: map[string]string{}, Tracing: "PassThrough"}
	if g, ok := t.globals["Function"]; ok {
		if err := applyGlobals(&f, g); err != nil {
			return Function{}, fmt.Errorf("globals: %w", err)
		}
	}
	if fn.CodeUri != nil && fn.CodeUri.String != nil {
		f.CodeURI = *fn.CodeUri.String
	}
	setString(&f.Handler, fn.Handler)
	setString(&f.Runtime, fn.Runtime)
	setString(&f.Role, fn.Role)
	if fn.Architectures != nil {
		f.Architectures = fn.Architectures
	}
	if fn.MemorySize != nil {
		f.MemorySize = *fn.MemorySize
	}
	if fn.Timeout != nil {
		f.Timeout = *fn.Timeout
	}
	if fn.Environment != nil {
		maps.Copy(f.Environment, fn.Environment.Variables)
	}
	raw := t.raw[id].Properties
	f.Policies = raw["Policies"]

	var events rawFunction
	if err := remarshal(raw, &events); err != nil {
		return Function{}, err
	}
	if events.Tracing != "" {
		f.Tracing = events.Tracing
	}
	f.ReservedConcurrency = events.ReservedConcurrentExecutions.or(0)
	if events.LoggingConfig.LogGroup != "" {
		f.LogGroup = events.LoggingConfig.LogGroup
	}
	for _, name := range slices.Sorted(maps.Keys(events.Events)) {
		ev := events.Events[name]
		var err error
		switch ev.Type {
		case "Api":
			var e rawAPIEvent
			if err = json.Unmarshal(ev.Properties, &e); err == nil {
				f.APIEvents = append(f.APIEvents, APIEvent{
					Name: name, API: Target(e.RestAPIID), Path: e.Path,
					Method: strings.ToUpper(e.Method), Authorizer: e.Auth.Authorizer,
				})
			}
		case "SQS":
			var e rawQueueEvent
			if err = json.Unmarshal(ev.Properties, &e); err == nil {
				f.QueueEvents = append(f.QueueEvents, QueueEvent{
					Name: name, Queue: Target(e.Queue), BatchSize: e.BatchSize.or(10),
					MaximumBatchingWindowInSeconds: e.MaximumBatchingWindowInSeconds.or(0),
					FunctionResponseTypes:          e.FunctionResponseTypes,
					MaximumConcurrency:             e.ScalingConfig.MaximumConcurrency.or(0),
				})
			}
		case "DynamoDB":
			var e rawStreamEvent
			if err = json.Unmarshal(ev.Properties, &e); err == nil {
				f.StreamEvents = append(f.StreamEvents, StreamEvent{
					Name: name, Table: Target(e.Stream), StartingPosition: e.StartingPosition,
					BatchSize:                      e.BatchSize.or(100),
					MaximumBatchingWindowInSeconds: e.MaximumBatchingWindowInSeconds.or(0),
					MaximumRetryAttempts:           e.MaximumRetryAttempts.or(-1),
					ParallelizationFactor:          e.ParallelizationFactor.or(1),
					BisectBatchOnFunctionError:     e.BisectBatchOnFunctionError,
					FunctionResponseTypes:          e.FunctionResponseTypes,
					OnFailure:                      Target(e.DestinationConfig.OnFailure.Destination),
				})
			}
		default:
			f.OtherEvents = append(f.OtherEvents, name)
		}
		if err != nil {
			return Function{}, fmt.Errorf("event %s: %w", name, err)
		}
	}
	return f, nil
}

// applyGlobals sets f from the function globals.
func applyGlobals(f *Function, g map[string]json.RawMessage) error {
	var v struct {
		CodeURI       *string  `json:"CodeUri"`
		Handler       *string  `json:"Handler"`
		Runtime       *string  `json:"Runtime"`
		Architectures []string `json:"Architectures"`
		MemorySize    *int     `json:"MemorySize"`
		Timeout       *int     `json:"Timeout"`
		Environment   struct {
			Variables map[string]string `json:"Variables"`
		} `json:"Environment"`
		Tracing       *string `json:"Tracing"`
		LoggingConfig struct {
			LogGroup *string `json:"LogGroup"`
		} `json:"LoggingConfig"`
	}
	if err := remarshal(g, &v); err != nil {
		return err
	}
	setString(&f.CodeURI, v.CodeURI)
	setString(&f.Handler, v.Handler)
	setString(&f.Runtime, v.Runtime)
	if v.Architectures != nil {
		f.Architectures = v.Architectures
	}
	f.MemorySize = intOr(v.MemorySize, f.MemorySize)
	f.Timeout = intOr(v.Timeout, f.Timeout)
	maps.Copy(f.Environment, v.Environment.Variables)
	setString(&f.Tracing, v.Tracing)
	setString(&f.LogGroup, v.LoggingConfig.LogGroup)
	return nil
}

// API is a SAM REST API.
type API struct {
	Name              string // logical id
	StageName         string
	DefaultAuthorizer string
	Authorizers       map[string]Authorizer
	// Throttle is the stage throttle of every method (MethodSettings
	// "/*" "*"); zero when the template sets none.
	Throttle Throttle
}

// Throttle is API Gateway's token bucket per method: RateLimit requests/s
// refill a bucket of BurstLimit.
type Throttle struct {
	RateLimit  float64
	BurstLimit int
}

// Authorizer is a Lambda authorizer of an API.
type Authorizer struct {
	Function string // logical id of its function
	// PayloadType is TOKEN or REQUEST.
	PayloadType string
	// Header is the identity source of a TOKEN authorizer.
	Header string
	// ReauthorizeEvery is how long API Gateway caches a result, in seconds.
	ReauthorizeEvery int
}

// APIs returns the SAM REST APIs, sorted by logical id.
func (t *Template) APIs() ([]API, error) {
	apis := t.GetAllServerlessApiResources()
	var out []API
	for _, id := range t.ids(TypeAPI) {
		a := apis[id]
		api := API{Name: id, StageName: a.StageName, Authorizers: map[string]Authorizer{}}
		var settings struct {
			MethodSettings []struct {
				ResourcePath         string  `json:"ResourcePath"`
				HTTPMethod           string  `json:"HttpMethod"`
				ThrottlingRateLimit  any     `json:"ThrottlingRateLimit"`
				ThrottlingBurstLimit *number `json:"ThrottlingBurstLimit"`
			} `json:"MethodSettings"`
		}
		if err := remarshal(t.raw[id].Properties, &settings); err != nil {
			return nil, fmt.Errorf("api %s: MethodSettings: %w", id, err)
		}
		for _, m := range settings.MethodSettings {
			if m.ResourcePath != "/*" || m.HTTPMethod != "*" {
				continue
			}
			if m.ThrottlingRateLimit != nil {
				rate, err := strconv.ParseFloat(scalar(m.ThrottlingRateLimit), 64)
				if err != nil {
					return nil, fmt.Errorf("api %s: ThrottlingRateLimit %v: %w", id, m.ThrottlingRateLimit, err)
				}
				api.Throttle.RateLimit = rate
			}
			api.Throttle.BurstLimit = m.ThrottlingBurstLimit.or(0)
		}
		if a.Auth != nil {
			setString(&api.DefaultAuthorizer, a.Auth.DefaultAuthorizer)
			var auths map[string]struct {
				FunctionArn         string `json:"FunctionArn"`
				FunctionPayloadType string `json:"FunctionPayloadType"`
				Identity            struct {
					Header           string `json:"Header"`
					ReauthorizeEvery *int   `json:"ReauthorizeEvery"`
				} `json:"Identity"`
			}
			if a.Auth.Authorizers != nil {
				if err := remarshal(a.Auth.Authorizers, &auths); err != nil {
					return nil, fmt.Errorf("api %s: authorizers: %w", id, err)
				}
			}
			for name, au := range auths {
				pt := au.FunctionPayloadType
				if pt == "" {
					pt = "TOKEN"
				}
				header := au.Identity.Header
				if header == "" && pt == "TOKEN" {
					header = "Authorization"
				}
				api.Authorizers[name] = Authorizer{
					Function: Target(au.FunctionArn), PayloadType: pt, Header: header,
					ReauthorizeEvery: intOr(au.Identity.ReauthorizeEvery, 300),
				}
			}
		}
		out = append(out, api)
	}
	return out, nil
}

// KeyAttribute is a key attribute of a table.
type KeyAttribute struct {
	Name string
	Type string // S, N or B
}

// Table is a DynamoDB table.
type Table struct {
	Name string // logical id
	// TableName is the TableName property (may be an intrinsic: Resolve
	// it); "" when CloudFormation names the table.
	TableName           string
	HashKey             KeyAttribute
	RangeKey            *KeyAttribute
	StreamViewType      string // "" when the table has no stream
	TTLAttribute        string // "" when TTL is off
	PointInTimeRecovery bool
	DeletionProtection  bool
	SSE                 bool
	Resource            *dynamodb.Table
}

// Tables returns the DynamoDB tables, sorted by logical id.
func (t *Template) Tables() ([]Table, error) {
	all := t.GetAllDynamoDBTableResources()
	var out []Table
	for _, id := range t.ids(TypeTable) {
		r := all[id]
		tb := Table{Name: id, Resource: r}
		setString(&tb.TableName, r.TableName)
		types := map[string]string{}
		for _, a := range r.AttributeDefinitions {
			types[a.AttributeName] = a.AttributeType
		}
		for _, k := range r.KeySchema {
			attr := KeyAttribute{Name: k.AttributeName, Type: types[k.AttributeName]}
			switch k.KeyType {
			case "HASH":
				tb.HashKey = attr
			case "RANGE":
				tb.RangeKey = &attr
			}
		}
		if tb.HashKey.Name == "" {
			return nil, fmt.Errorf("table %s: no HASH key", id)
		}
		if s := r.StreamSpecification; s != nil {
			tb.StreamViewType = s.StreamViewType
		}
		if ttl := r.TimeToLiveSpecification; ttl != nil && ttl.Enabled && ttl.AttributeName != nil {
			tb.TTLAttribute = *ttl.AttributeName
		}
		if p := r.PointInTimeRecoverySpecification; p != nil && p.PointInTimeRecoveryEnabled != nil {
			tb.PointInTimeRecovery = *p.PointInTimeRecoveryEnabled
		}
		if r.DeletionProtectionEnabled != nil {
			tb.DeletionProtection = *r.DeletionProtectionEnabled
		}
		tb.SSE = r.SSESpecification != nil && r.SSESpecification.SSEEnabled
		out = append(out, tb)
	}
	return out, nil
}

// Queue is an SQS queue.
type Queue struct {
	Name string // logical id
	// QueueName is the QueueName property (may be an intrinsic: Resolve
	// it); "" when CloudFormation names the queue.
	QueueName                 string
	FIFO                      bool
	ContentBasedDeduplication bool
	VisibilityTimeout         int // seconds; SQS's default 30 when unset
	MessageRetentionPeriod    int // seconds; SQS's default 345600 when unset
	// DeadLetterQueue is the logical id of the RedrivePolicy's target, ""
	// without one; MaxReceiveCount its receive count.
	DeadLetterQueue string
	MaxReceiveCount int
	Resource        *sqs.Queue
}

// Queues returns the SQS queues, sorted by logical id.
func (t *Template) Queues() ([]Queue, error) {
	all := t.GetAllSQSQueueResources()
	var out []Queue
	for _, id := range t.ids(TypeQueue) {
		r := all[id]
		q := Queue{
			Name: id, Resource: r,
			FIFO:                      r.FifoQueue != nil && *r.FifoQueue,
			ContentBasedDeduplication: r.ContentBasedDeduplication != nil && *r.ContentBasedDeduplication,
			VisibilityTimeout:         intOr(r.VisibilityTimeout, 30),
			MessageRetentionPeriod:    intOr(r.MessageRetentionPeriod, 345600),
		}
		setString(&q.QueueName, r.QueueName)
		if r.RedrivePolicy != nil {
			var rp struct {
				DeadLetterTargetArn string `json:"deadLetterTargetArn"`
				MaxReceiveCount     any    `json:"maxReceiveCount"`
			}
			if err := remarshal(r.RedrivePolicy, &rp); err != nil {
				return nil, fmt.Errorf("queue %s: RedrivePolicy: %w", id, err)
			}
			q.DeadLetterQueue = Target(rp.DeadLetterTargetArn)
			if _, err := fmt.Sscan(scalar(rp.MaxReceiveCount), &q.MaxReceiveCount); err != nil {
				return nil, fmt.Errorf("queue %s: maxReceiveCount %v: %w", id, rp.MaxReceiveCount, err)
			}
		}
		out = append(out, q)
	}
	return out, nil
}

// Statement is one statement of an inline IAM policy.
type Statement struct {
	Role      string // logical id of the AWS::IAM::Role
	Policy    string // policy name
	Sid       string
	Effect    string
	Actions   []string
	Resources []string // literals or intrinsics
	// NotActions and NotResources grant everything but what they list:
	// least privilege has no use for them.
	NotActions, NotResources []string
	Condition                map[string]any
}

// Statements returns the statements of the inline policies of every
// AWS::IAM::Role, sorted by role; statements that Fn::If removed are absent.
// SAM Policies on functions are not included: see Function.Policies.
func (t *Template) Statements() ([]Statement, error) {
	roles := t.GetAllIAMRoleResources()
	var out []Statement
	for _, id := range t.ids(TypeRole) {
		for _, p := range roles[id].Policies {
			sts, err := statements(id, p)
			if err != nil {
				return nil, fmt.Errorf("role %s, policy %s: %w", id, p.PolicyName, err)
			}
			out = append(out, sts...)
		}
	}
	return out, nil
}

func statements(role string, p iam.Role_Policy) ([]Statement, error) {
	var doc struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := remarshal(p.PolicyDocument, &doc); err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(doc.Statement, &raws); err != nil {
		raws = []json.RawMessage{doc.Statement} // a single statement
	}
	var out []Statement
	for _, raw := range raws {
		if string(raw) == "null" { // an Fn::If branch of AWS::NoValue
			continue
		}
		var s struct {
			Sid         string          `json:"Sid"`
			Effect      string          `json:"Effect"`
			Action      json.RawMessage `json:"Action"`
			Resource    json.RawMessage `json:"Resource"`
			NotAction   json.RawMessage `json:"NotAction"`
			NotResource json.RawMessage `json:"NotResource"`
			Condition   map[string]any  `json:"Condition"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		actions, err := stringOrList(s.Action)
		if err != nil {
			return nil, fmt.Errorf("statement %q: Action: %w", s.Sid, err)
		}
		resources, err := stringOrList(s.Resource)
		if err != nil {
			return nil, fmt.Errorf("statement %q: Resource: %w", s.Sid, err)
		}
		notActions, err := stringOrList(s.NotAction)
		if err != nil {
			return nil, fmt.Errorf("statement %q: NotAction: %w", s.Sid, err)
		}
		notResources, err := stringOrList(s.NotResource)
		if err != nil {
			return nil, fmt.Errorf("statement %q: NotResource: %w", s.Sid, err)
		}
		out = append(out, Statement{
			Role: role, Policy: p.PolicyName, Sid: s.Sid, Effect: s.Effect,
			Actions: actions, Resources: resources, NotActions: notActions, NotResources: notResources,
			Condition: s.Condition,
		})
	}
	return out, nil
}

func stringOrList(raw json.RawMessage) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	err := json.Unmarshal(raw, &list)
	return list, err
}

func setString(dst *string, src *string) {
	if src != nil {
		*dst = *src
	}
}

// number is a whole number written as a YAML number, or as the string a
// Ref to a Number parameter resolves to ("10").
type number int

func (n *number) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	i, err := strconv.Atoi(scalar(v))
	if err != nil {
		return fmt.Errorf("%s is not a whole number", b)
	}
	*n = number(i)
	return nil
}

// or is n's value, def when it is unset.
func (n *number) or(def int) int {
	if n == nil {
		return def
	}
	return int(*n)
}

func intOr(v *int, def int) int {
	if v == nil {
		return def
	}
	return *v
}

// remarshal decodes into out a value that goformation decoded as any.
func remarshal(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
