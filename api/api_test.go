package api_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/chronicle-go/chronicle/api/apitest"
	"github.com/chronicle-go/chronicle/infra/template"
)

// The document is OpenAPI 3.1 and valid (apitest.Load checks both).
func TestDocumentIsValidOpenAPI31(t *testing.T) {
	c, err := apitest.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes()) == 0 {
		t.Fatal("the document has no operations")
	}
}

// The routes of template.yaml and the operations of the document are the
// same set, and the routes without an authorizer are the document's public
// operations.
func TestRoutesMatchTemplate(t *testing.T) {
	tpl, err := template.Load("../template.yaml", template.WithParameters(map[string]string{
		"JwtIssuer": "https://idp.example.com/", "JwksUrl": "https://idp.example.com/jwks.json", "EmailSender": "a@example.com",
	}))
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	inTemplate := map[string]bool{} // route -> public
	for _, f := range fns {
		for _, e := range f.APIEvents {
			inTemplate[e.Method+" "+e.Path] = e.Authorizer == "NONE"
		}
	}
	c, err := apitest.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	inDocument := map[string]bool{}
	for _, r := range c.Routes() {
		inDocument[r.String()] = r.Public
	}
	var diff []string
	for _, r := range slices.Sorted(maps.Keys(inTemplate)) {
		public, ok := inDocument[r]
		switch {
		case !ok:
			diff = append(diff, "only in template.yaml: "+r)
		case public != inTemplate[r]:
			diff = append(diff, fmt.Sprintf("%s: public (no token) in template.yaml %v, in the document %v", r, inTemplate[r], public))
		}
	}
	for _, r := range slices.Sorted(maps.Keys(inDocument)) {
		if _, ok := inTemplate[r]; !ok {
			diff = append(diff, "only in the OpenAPI document: "+r)
		}
	}
	for _, d := range diff {
		t.Error(d)
	}
	if len(inTemplate) == 0 {
		t.Error("template.yaml declares no API route")
	}
}
