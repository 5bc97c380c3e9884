package apitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// docURL names the document as a JSON Schema resource: its schemas are
// compiled at JSON pointers into it, so that their "#/components/..."
// references resolve as in the document.
const docURL = "mem://api/openapi.json"

// bodySchemas validates bodies with JSON Schema 2020-12 (the dialect of
// OpenAPI 3.1), each schema compiled once. Safe for concurrent use.
type bodySchemas struct {
	mu       sync.Mutex
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema // by JSON pointer
}

func newBodySchemas(doc *openapi3.T) (*bodySchemas, error) {
	b, err := doc.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("the OpenAPI document as JSON: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("the OpenAPI document as JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // uuid and date-time mean what they say
	if err := c.AddResource(docURL, v); err != nil {
		return nil, fmt.Errorf("the OpenAPI document as a JSON Schema resource: %w", err)
	}
	return &bodySchemas{compiler: c, compiled: map[string]*jsonschema.Schema{}}, nil
}

// schema is the compiled schema at pointer ("#/components/schemas/User").
func (s *bodySchemas) schema(pointer string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.compiled[pointer]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(docURL + pointer)
	if err != nil {
		return nil, fmt.Errorf("compile the schema at %s: %w", pointer, err)
	}
	s.compiled[pointer] = sch
	return sch, nil
}

// check validates a JSON body against the schema at pointer.
func (s *bodySchemas) check(pointer string, body []byte) error {
	sch, err := s.schema(pointer)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("the body is not JSON: %w", err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("the body does not match %s: %w", pointer, err)
	}
	return nil
}

// request checks the body of a request the service took.
func (s *bodySchemas) request(route *routers.Route, x Exchange) error {
	rb := route.Operation.RequestBody
	if rb == nil {
		if len(x.RequestBody) > 0 {
			return errors.New("the operation takes no body, yet one was sent")
		}
		return nil
	}
	if len(x.RequestBody) == 0 {
		if rb.Value.Required {
			return errors.New("the operation needs a body, and none was sent")
		}
		return nil
	}
	base := operationPointer(route) + "/requestBody"
	if rb.Ref != "" {
		base = rb.Ref
	}
	mt, err := mediaType(x.Request.Header.Get("Content-Type"), rb.Value.Content)
	if err != nil {
		return fmt.Errorf("the request body: %w", err)
	}
	return s.check(base+"/content/"+escape(mt)+"/schema", x.RequestBody)
}

// response checks the body of an answer whose status the operation lists
// (openapi3filter checked that).
func (s *bodySchemas) response(route *routers.Route, x Exchange) error {
	ref := route.Operation.Responses.Status(x.Status)
	if ref == nil {
		return fmt.Errorf("status %d is not one the operation lists", x.Status)
	}
	base := operationPointer(route) + "/responses/" + strconv.Itoa(x.Status)
	if ref.Ref != "" {
		base = ref.Ref
	}
	if len(ref.Value.Content) == 0 {
		if len(x.Body) > 0 {
			return errors.New("the answer has a body the document does not describe")
		}
		return nil
	}
	mt, err := mediaType(x.Header.Get("Content-Type"), ref.Value.Content)
	if err != nil {
		return fmt.Errorf("the answer: %w", err)
	}
	body := x.Body
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		// A text answer (the console's page and assets): its schema is
		// that of the text as one JSON string.
		if body, err = json.Marshal(string(x.Body)); err != nil {
			return err
		}
	}
	return s.check(base+"/content/"+escape(mt)+"/schema", body)
}

// operationPointer is the JSON pointer of route's operation.
func operationPointer(route *routers.Route) string {
	return "#/paths/" + escape(route.Path) + "/" + strings.ToLower(route.Method)
}

// mediaType is the key of content that Content-Type ct names.
func mediaType(ct string, content openapi3.Content) (string, error) {
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && content[mt] != nil {
		return mt, nil
	}
	return "", fmt.Errorf("Content-Type %q, want one of %v", ct, slices.Sorted(maps.Keys(content)))
}

// escape escapes a JSON pointer token (RFC 6901) for a URL fragment.
func escape(token string) string {
	token = strings.NewReplacer("~", "~0", "/", "~1").Replace(token)
	return strings.NewReplacer("{", "%7B", "}", "%7D").Replace(token)
}
