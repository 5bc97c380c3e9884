package httpapi_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/chronicle-go/chronicle/infra/apigw"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/teamapi"
	"github.com/chronicle-go/chronicle/infra/template"
)

// TestRoutesAreTheTemplates: the route tables the functions route by
// (httpapi.Routes and teamapi.Routes, which the functions' edges compose)
// and template.yaml, which API Gateway and the local
// runner route by, declare the same routes on the same functions; and the
// table is one http.ServeMux accepts.
func TestRoutesAreTheTemplates(t *testing.T) {
	routes := append(slices.Clone(httpapi.Routes), teamapi.Routes...)
	if err := apigw.CheckRoutes(routes); err != nil {
		t.Fatal(err)
	}
	tpl, err := template.Load("../../template.yaml", template.WithParameters(map[string]string{
		"JwtIssuer": "https://idp.example.com/", "JwksUrl": "https://idp.example.com/jwks.json", "EmailSender": "a@example.com",
	}))
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	inTemplate := map[string]string{}
	for _, f := range fns {
		for _, e := range f.APIEvents {
			inTemplate[e.Method+" "+e.Path] = f.Name
		}
	}
	inTable := map[string]string{}
	for _, r := range routes {
		inTable[r.Pattern] = r.Function
	}
	for _, p := range slices.Sorted(maps.Keys(inTable)) {
		if inTemplate[p] != inTable[p] {
			t.Errorf("%s: served by %q in the route table, by %q in template.yaml", p, inTable[p], inTemplate[p])
		}
	}
	for _, p := range slices.Sorted(maps.Keys(inTemplate)) {
		if _, ok := inTable[p]; !ok {
			t.Errorf("%s (%s): in template.yaml, not in the route table", p, inTemplate[p])
		}
	}
}
