package lambdafn

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/pii"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// TestFunctionsServeTeams: the commands and queries functions, built from
// their environment as in Lambda (sealing on), serve the Team API beside
// the User API: a principal creates its user, then a team it owns (found
// through the hashed sub# guard), adds a member and reads the team and its
// history. Every call the handlers make is checked against each function's
// role in template.yaml.
func TestFunctionsServeTeams(t *testing.T) {
	ctx := t.Context()
	_, tables := readmodeltest.EventStore(t)
	client := awstest.DynamoDB(t)
	readModel, keysTable := awstest.TableName("readmodel"), awstest.TableName("keys")
	if err := userviews.CreateTable(ctx, client, readModel); err != nil {
		t.Fatal(err)
	}
	if err := pii.CreateTable(ctx, client, keysTable); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = readmodel.DeleteTable(ctx, client, readModel)
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(keysTable)})
	})
	base := awstest.Config(t)
	key, err := kms.NewFromConfig(base).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("teams test")})
	if err != nil {
		t.Fatal(err)
	}
	keyID := aws.ToString(key.KeyMetadata.KeyId)
	names := map[string]string{"EventsTable": tables.Events, "GuardsTable": tables.Guards, "SnapshotsTable": tables.Snapshots,
		"ReadModelTable": readModel, "KeysTable": keysTable, "PersonalDataKey": keyID}
	getenv := env(map[string]string{
		"EVENTS_TABLE": tables.Events, "GUARDS_TABLE": tables.Guards, "SNAPSHOTS_TABLE": tables.Snapshots,
		"READMODEL_TABLE": readModel, "KEYS_TABLE": keysTable, "PII_KEY_ID": keyID, "SNAPSHOT_INTERVAL": "2",
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	withCheck := func(function string) aws.Config {
		cfg := base.Copy()
		cfg.APIOptions = append(slices.Clone(cfg.APIOptions), iamcheck.ForTest(t, cfg.Region, function, names))
		return cfg
	}
	cmds, err := Commands(withCheck("CommandsFunction"), getenv, logger)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := Queries(withCheck("QueriesFunction"), getenv, logger)
	if err != nil {
		t.Fatal(err)
	}

	type handler func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)
	call := func(h handler, sub, method, resource, path string, params map[string]string, body string, want int) map[string]any {
		t.Helper()
		resp, err := h(ctx, events.APIGatewayProxyRequest{Resource: resource, Path: path, HTTPMethod: method, PathParameters: params,
			Headers: map[string]string{"Content-Type": "application/json"}, Body: body,
			RequestContext: events.APIGatewayProxyRequestContext{Authorizer: auth.Principal{Sub: sub}.AuthorizerContext()}})
		if err != nil || resp.StatusCode != want {
			t.Fatalf("%s %s: %d %v, want %d: %s", method, path, resp.StatusCode, err, want, resp.Body)
		}
		var out map[string]any
		_ = json.Unmarshal([]byte(resp.Body), &out)
		return out
	}
	newUser := func(sub string) string {
		w := call(cmds.Handle, sub, "POST", "/users", "/users", nil, `{"name":"U","email":"`+sub+`@example.com"}`, http.StatusCreated)
		return w["id"].(string)
	}
	alice, bob := "alice-"+uuid.NewString()[:8], "bob-"+uuid.NewString()[:8]
	newUser(alice)
	bobID := newUser(bob)
	w := call(cmds.Handle, alice, "POST", "/teams", "/teams", nil, `{"name":"Platform"}`, http.StatusCreated)
	id := w["id"].(string)
	p := map[string]string{"id": id}
	call(cmds.Handle, alice, "PUT", "/teams/{id}/members/{userId}", "/teams/"+id+"/members/"+bobID,
		map[string]string{"id": id, "userId": bobID}, `{"role":"member"}`, http.StatusOK)
	call(cmds.Handle, bob, "PUT", "/teams/{id}/name", "/teams/"+id+"/name", p, `{"name":"Mine"}`, http.StatusForbidden)
	team := call(qs.Handle, bob, "GET", "/teams/{id}", "/teams/"+id, p, "", http.StatusOK)
	if team["name"] != "Platform" || len(team["members"].([]any)) != 2 {
		t.Fatalf("team %v", team)
	}
	h := call(qs.Handle, bob, "GET", "/teams/{id}/history", "/teams/"+id+"/history", p, "", http.StatusOK)
	if n := len(h["events"].([]any)); n != 2 {
		t.Fatalf("history of %d events: %v", n, h)
	}
	call(qs.Handle, "stranger-"+uuid.NewString()[:8], "GET", "/teams/{id}", "/teams/"+id, p, "", http.StatusForbidden)
}
