package iamcheck_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/chronicle-go/chronicle/infra/iamcheck"
)

// idemStatement is how template.yaml scopes the membership function's
// Idempotency statement to the idempotency records.
const idemStatement = "Action: [dynamodb:GetItem, dynamodb:PutItem]\n                Resource: !GetAtt GuardsTable.Arn\n" +
	"                Condition:\n                  ForAllValues:StringLike:\n                    dynamodb:LeadingKeys: [\"idem#*\"]"

// withIdem loads the template with the membership function's Idempotency
// statement granting actions under the condition op: values.
func withIdem(t *testing.T, actions, op, values string) func(string) string {
	t.Helper()
	return func(y string) string {
		if strings.Count(y, idemStatement) != 1 {
			t.Fatalf("template.yaml has not exactly one statement %q", idemStatement)
		}
		return strings.Replace(y, idemStatement, "Action: ["+actions+"]\n                Resource: !GetAtt GuardsTable.Arn\n"+
			"                Condition:\n                  "+op+":\n                    dynamodb:LeadingKeys: "+values, 1)
	}
}

const allItemActions = "dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:Query, dynamodb:Scan, dynamodb:BatchGetItem, dynamodb:BatchWriteItem, dynamodb:ConditionCheckItem"

func s(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }

func pk(v string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{"pk": s(v)}
}

// recorded runs op through a fresh checker's middleware as function (so
// that no call is deduplicated against another case's) and returns its
// records.
func recorded(t *testing.T, policies map[string]*iamcheck.Policy, function string, op func(context.Context, *dynamodb.Client)) []iamcheck.Record {
	t.Helper()
	var got []iamcheck.Record
	checker := iamcheck.NewChecker(policies, "123456789012", func(r iamcheck.Record) { got = append(got, r) })
	cfg := aws.Config{Region: "us-east-1", APIOptions: []func(*middleware.Stack) error{checker.APIOptions(function), stopBeforeSend}}
	op(context.Background(), dynamodb.NewFromConfig(cfg))
	if len(got) == 0 {
		t.Fatal("no call recorded")
	}
	return got
}

// TestLeadingKeysRequestShapes: every item operation is checked on the
// partition keys of the items it touches, read from where each request
// shape carries them; one forbidden item denies a batch or a transaction.
func TestLeadingKeysRequestShapes(t *testing.T) {
	_, policies := stackOf(t, load(t, withIdem(t, allItemActions, "ForAllValues:StringLike", `["idem#*"]`)))
	const guards, events = "s-guards", "s-events"
	cases := []struct {
		name string
		op   func(context.Context, *dynamodb.Client)
		// denied is "" when every call is granted, else what the denial says.
		denied string
	}{
		{"GetItem", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(guards), Key: pk("idem#r1")})
		}, ""},
		{"GetItem of another item", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(guards), Key: pk("email#a@b.c")})
		}, `dynamodb:GetItem on arn:aws:dynamodb:us-east-1:123456789012:table/s-guards (dynamodb:LeadingKeys ["email#a@b.c"]) not granted; add to MembershipRole:
  - Effect: Allow
    Action: [dynamodb:GetItem]
    Resource: !GetAtt GuardsTable.Arn
    # where the role's items are only these: Condition: {ForAllValues:StringLike: {dynamodb:LeadingKeys: ["email#*"]}}`},
		{"GetItem by table ARN", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("arn:aws:dynamodb:us-east-1:123456789012:table/s-guards"), Key: pk("idem#r1")})
		}, ""},
		{"PutItem", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(guards), Item: map[string]ddbtypes.AttributeValue{"pk": s("idem#r1"), "owner": s("x")}})
		}, ""},
		{"PutItem of another item", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(guards), Item: pk("sub#alice")})
		}, `(dynamodb:LeadingKeys ["sub#alice"]) not granted`},
		{"PutItem without its key", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(guards), Item: map[string]ddbtypes.AttributeValue{"owner": s("x")}})
		}, "(dynamodb:LeadingKeys unknown: partition key pk: missing from the request) not granted"},
		{"UpdateItem", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(guards), Key: pk("idem#r1")})
		}, ""},
		{"UpdateItem of another item", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(guards), Key: pk("xidem#r1")})
		}, `dynamodb:UpdateItem on arn:aws:dynamodb:us-east-1:123456789012:table/s-guards (dynamodb:LeadingKeys ["xidem#r1"]) not granted`},
		{"DeleteItem", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(guards), Key: pk("idem#r1")})
		}, ""},
		{"DeleteItem of another item", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(guards), Key: pk("email#a@b.c")})
		}, `dynamodb:DeleteItem on arn:aws:dynamodb:us-east-1:123456789012:table/s-guards (dynamodb:LeadingKeys ["email#a@b.c"]) not granted`},
		{"Query, key condition with names", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(guards),
				KeyConditionExpression:    aws.String("#p = :p AND #s BETWEEN :a AND :b"),
				ExpressionAttributeNames:  map[string]string{"#p": "pk", "#s": "sk"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s("idem#r1"), ":a": s("a"), ":b": s("b")}})
		}, ""},
		{"Query, value first and parenthesized", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(guards),
				KeyConditionExpression:    aws.String("(:p = pk) and begins_with(sk, :s)"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s("idem#r1"), ":s": s("a")}})
		}, ""},
		{"Query of another partition", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(guards),
				KeyConditionExpression:    aws.String("pk = :p"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s("email#a@b.c")}})
		}, `dynamodb:Query on arn:aws:dynamodb:us-east-1:123456789012:table/s-guards (dynamodb:LeadingKeys ["email#a@b.c"]) not granted`},
		{"Query, legacy KeyConditions", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(guards), KeyConditions: map[string]ddbtypes.Condition{
				"pk": {ComparisonOperator: ddbtypes.ComparisonOperatorEq, AttributeValueList: []ddbtypes.AttributeValue{s("idem#r1")}}}})
		}, ""},
		{"Query, legacy KeyConditions of another partition", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(guards), KeyConditions: map[string]ddbtypes.Condition{
				"pk": {ComparisonOperator: ddbtypes.ComparisonOperatorEq, AttributeValueList: []ddbtypes.AttributeValue{s("sub#x")}}}})
		}, `(dynamodb:LeadingKeys ["sub#x"]) not granted`},
		// Fail closed: a Query whose partition the check cannot read would
		// pass ForAllValues on an empty set.
		{"Query whose key condition names no partition value", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(guards),
				KeyConditionExpression:    aws.String("sk = :s"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":s": s("a")}})
		}, `(dynamodb:LeadingKeys unknown: the key condition "sk = :s" names no value of the partition key pk) not granted`},
		{"Scan", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(guards)})
		}, "(dynamodb:LeadingKeys unknown: a Scan reads every partition: it has no leading keys) not granted"},
		{"BatchGetItem", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddbtypes.KeysAndAttributes{
				guards: {Keys: []map[string]ddbtypes.AttributeValue{pk("idem#r1"), pk("idem#r2")}}}})
		}, ""},
		{"BatchGetItem with another item", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddbtypes.KeysAndAttributes{
				guards: {Keys: []map[string]ddbtypes.AttributeValue{pk("idem#r1"), pk("email#a@b.c")}}}})
		}, `dynamodb:BatchGetItem on arn:aws:dynamodb:us-east-1:123456789012:table/s-guards (dynamodb:LeadingKeys ["email#a@b.c" "idem#r1"]) not granted`},
		{"BatchWriteItem, puts and deletes", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{guards: {
				{PutRequest: &ddbtypes.PutRequest{Item: pk("idem#r1")}}, {DeleteRequest: &ddbtypes.DeleteRequest{Key: pk("idem#r2")}}}}})
		}, ""},
		{"BatchWriteItem deleting another item", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{guards: {
				{PutRequest: &ddbtypes.PutRequest{Item: pk("idem#r1")}}, {DeleteRequest: &ddbtypes.DeleteRequest{Key: pk("sub#x")}}}}})
		}, `(dynamodb:LeadingKeys ["idem#r1" "sub#x"]) not granted`},
		// The membership's own transaction: the event (TeamStreams, the
		// whole events table) and its idempotency record.
		{"TransactWriteItems", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
				{Put: &ddbtypes.Put{TableName: aws.String(events), Item: pk("3f1c6a3e-team")}},
				{Put: &ddbtypes.Put{TableName: aws.String(guards), Item: pk("idem#r1")}},
				{ConditionCheck: &ddbtypes.ConditionCheck{TableName: aws.String(guards), Key: pk("idem#r2"), ConditionExpression: aws.String("attribute_exists(pk)")}},
			}})
		}, ""},
		{"TransactWriteItems mixing an allowed and a forbidden item", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
				{Put: &ddbtypes.Put{TableName: aws.String(guards), Item: pk("idem#r1")}},
				{Update: &ddbtypes.Update{TableName: aws.String(guards), Key: pk("email#a@b.c"), UpdateExpression: aws.String("SET x = :x")}},
			}})
		}, `dynamodb:UpdateItem on arn:aws:dynamodb:us-east-1:123456789012:table/s-guards (dynamodb:LeadingKeys ["email#a@b.c"]) not granted`},
		{"TransactGetItems", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []ddbtypes.TransactGetItem{
				{Get: &ddbtypes.Get{TableName: aws.String(guards), Key: pk("idem#r1")}}, {Get: &ddbtypes.Get{TableName: aws.String(guards), Key: pk("idem#r2")}}}})
		}, ""},
		{"TransactGetItems mixing an allowed and a forbidden item", func(ctx context.Context, c *dynamodb.Client) {
			_, _ = c.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []ddbtypes.TransactGetItem{
				{Get: &ddbtypes.Get{TableName: aws.String(guards), Key: pk("idem#r1")}}, {Get: &ddbtypes.Get{TableName: aws.String(guards), Key: pk("sub#x")}}}})
		}, `dynamodb:GetItem on arn:aws:dynamodb:us-east-1:123456789012:table/s-guards (dynamodb:LeadingKeys ["sub#x"]) not granted`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var denied []string
			granted := 0
			for _, r := range recorded(t, policies, "MembershipFunction", c.op) {
				if r.Denied != "" {
					denied = append(denied, r.Denied)
				} else {
					granted++
				}
			}
			switch {
			case c.denied == "" && len(denied) > 0:
				t.Errorf("denied: %s", strings.Join(denied, "\n"))
			case c.denied != "" && (len(denied) != 1 || !strings.Contains(denied[0], c.denied)):
				t.Errorf("denials %q, want one saying %q", denied, c.denied)
			}
			if c.denied != "" && strings.HasPrefix(c.name, "Transact") && granted == 0 {
				t.Error("the transaction's allowed item was not granted on its own: IAM checks item by item")
			}
		})
	}
}

// TestSetOperators: ForAllValues holds on every value of the set and so on
// an empty or absent one, as in IAM; ForAnyValue on at least one; a key the
// recorder could not determine holds neither (fail closed).
func TestSetOperators(t *testing.T) {
	const guards = "arn:aws:dynamodb:us-east-1:123456789012:table/s-guards"
	call := func(keys ...string) iamcheck.Call {
		return iamcheck.Call{Function: "MembershipFunction", Action: "dynamodb:GetItem", Resource: guards,
			Sets: map[string][]string{iamcheck.LeadingKeysKey: keys}}
	}
	absent := iamcheck.Call{Function: "MembershipFunction", Action: "dynamodb:GetItem", Resource: guards}
	unknown := absent
	unknown.Unknown = map[string]string{iamcheck.LeadingKeysKey: "a Scan"}
	lowerCase := absent
	lowerCase.Sets = map[string][]string{"DynamoDB:leadingkeys": {"email#x"}} // condition keys are case-insensitive
	cases := []struct {
		name, op, values string
		call             iamcheck.Call
		granted          bool
	}{
		{"all like", "ForAllValues:StringLike", `["idem#*"]`, call("idem#a", "idem#b"), true},
		{"all like, one not", "ForAllValues:StringLike", `["idem#*"]`, call("idem#a", "email#b"), false},
		{"all like, any pattern", "ForAllValues:StringLike", `["idem#*", "email#*"]`, call("idem#a", "email#b"), true},
		{"all like, empty set", "ForAllValues:StringLike", `["idem#*"]`, call(), true},
		{"all like, key absent", "ForAllValues:StringLike", `["idem#*"]`, absent, true},
		{"all like, key unknown", "ForAllValues:StringLike", `["idem#*"]`, unknown, false},
		{"all like, the key in another letter case", "ForAllValues:StringLike", `["idem#*"]`, lowerCase, false},
		{"all equal", "ForAllValues:StringEquals", `["idem#a"]`, call("idem#a"), true},
		{"all equal, a pattern is not one", "ForAllValues:StringEquals", `["idem#*"]`, call("idem#a"), false},
		{"all not like", "ForAllValues:StringNotLike", `["email#*", "sub#*"]`, call("idem#a"), true},
		{"all not like, one is", "ForAllValues:StringNotLike", `["email#*", "sub#*"]`, call("idem#a", "sub#b"), false},
		{"any like", "ForAnyValue:StringLike", `["idem#*"]`, call("email#a", "idem#b"), true},
		{"any like, none", "ForAnyValue:StringLike", `["idem#*"]`, call("email#a"), false},
		{"any like, empty set", "ForAnyValue:StringLike", `["idem#*"]`, call(), false},
		{"any like, key absent", "ForAnyValue:StringLike", `["idem#*"]`, absent, false},
		{"any like if exists, key absent", "ForAnyValue:StringLikeIfExists", `["idem#*"]`, absent, true},
		{"any equal", "ForAnyValue:StringEquals", `["idem#b"]`, call("email#a", "idem#b"), true},
	}
	// One template, a statement per case, each on a table of its own.
	var stmts strings.Builder
	resource := func(i int) string { return fmt.Sprintf("arn:aws:dynamodb:us-east-1:123456789012:table/case-%d", i) }
	for i, c := range cases {
		fmt.Fprintf(&stmts, "\n              - Sid: Case%d\n                Effect: Allow\n                Action: [dynamodb:GetItem]\n"+
			"                Resource: %q\n                Condition:\n                  %s:\n                    dynamodb:LeadingKeys: %s",
			i, resource(i), c.op, c.values)
	}
	_, policies := stackOf(t, load(t, func(y string) string {
		if strings.Count(y, idemStatement) != 1 {
			t.Fatalf("template.yaml has not exactly one statement %q", idemStatement)
		}
		return strings.Replace(y, idemStatement, idemStatement+stmts.String(), 1)
	}))
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.call.Resource = resource(i)
			grants, err := policies["MembershipFunction"].Check(c.call)
			if c.granted && err != nil {
				t.Errorf("%+v: %v, want granted", c.call, err)
			}
			if !c.granted && err == nil {
				t.Errorf("%+v: granted by %v, want denied", c.call, grants)
			}
		})
	}
}

// TestSetOperatorsRefused: a multivalued key tested with a single-valued
// operator, or a set operator the check does not evaluate, fails the
// policy rather than be guessed at.
func TestSetOperatorsRefused(t *testing.T) {
	for op, want := range map[string]string{
		"StringLike":                   "dynamodb:LeadingKeys holds a set of values: test it with ForAllValues:StringLike",
		"ForAllValues:NumericLessThan": "condition operator ForAllValues:NumericLessThan: the check does not evaluate it",
	} {
		tpl := load(t, withIdem(t, "dynamodb:GetItem", op, `["idem#*"]`))
		st, err := iamcheck.NewStack(tpl, "s", "us-east-1", "123456789012")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := iamcheck.Policies(tpl, st); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", op, err, want)
		}
	}
}

// TestTemplateItemScopes: the statements of template.yaml that are scoped to
// the items of a key prefix grant those items and no other of the table.
func TestTemplateItemScopes(t *testing.T) {
	_, policies := stackOf(t, load(t, nil))
	table := func(name string) string { return "arn:aws:dynamodb:us-east-1:123456789012:table/s-" + name }
	cases := []struct {
		function, action, table, key string
		granted                      bool
	}{
		{"MembershipFunction", "dynamodb:GetItem", "guards", "idem#k", true},
		{"MembershipFunction", "dynamodb:PutItem", "guards", "idem#k", true},
		{"MembershipFunction", "dynamodb:PutItem", "guards", "email#a@b.c", false},
		{"MembershipFunction", "dynamodb:GetItem", "guards", "sub#alice", false},
		{"MembershipFunction", "dynamodb:UpdateItem", "readmodel", "failure#m1", true},
		{"MembershipFunction", "dynamodb:UpdateItem", "readmodel", "user#1", false},
		{"MembershipFunction", "dynamodb:PutItem", "events", "3f1c6a3e-0000-4000-8000-000000000000", true}, // the events table: not scoped
		{"NotifierFunction", "dynamodb:UpdateItem", "readmodel", "mail#e1", true},
		{"NotifierFunction", "dynamodb:UpdateItem", "readmodel", "failure#m1", true},
		{"NotifierFunction", "dynamodb:UpdateItem", "readmodel", "checkpoint#user-view", false},
		{"NotifierFunction", "dynamodb:UpdateItem", "readmodel", "user#1", false},
		{"QueriesFunction", "dynamodb:GetItem", "guards", "sub#alice", true},
		{"QueriesFunction", "dynamodb:GetItem", "guards", "idem#k", false},
		{"QueriesFunction", "dynamodb:GetItem", "guards", "email#a@b.c", false},
	}
	for _, c := range cases {
		call := iamcheck.Call{Function: c.function, Action: c.action, Resource: table(c.table),
			Sets: map[string][]string{iamcheck.LeadingKeysKey: {c.key}}}
		_, err := policies[c.function].Check(call)
		if c.granted != (err == nil) {
			t.Errorf("%s %s on %s item %s: %v, want granted %v", c.function, c.action, c.table, c.key, err, c.granted)
		}
	}
}
