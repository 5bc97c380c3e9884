package iamcheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/infra/template"
)

// partitionKeys maps a table's physical name to the name of its partition
// key attribute (KeySchema HASH), as the template declares it: the
// recorder reads a request's leading keys (LeadingKeysKey) with it.
type partitionKeys map[string]string

// tablePartitionKeys reads the partition key of every table of tpl, under
// the names r gives the tables (Ref of a table is its name).
func tablePartitionKeys(tpl *template.Template, r template.Resolver) (partitionKeys, error) {
	tables, err := tpl.Tables()
	if err != nil {
		return nil, err
	}
	out := partitionKeys{}
	for _, t := range tables {
		name, err := r.Ref(t.Name)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Name, err)
		}
		out[name] = t.HashKey.Name
	}
	return out, nil
}

// tableName is the name of a table a request names by name or by ARN.
func tableName(name string) string {
	if _, after, ok := strings.Cut(name, ":table/"); ok {
		return after
	}
	return name
}

// setLeadingKeys gives c the leading keys of the items of table: their
// partition-key values, each once, sorted; an empty set for no item. When
// one of them cannot be read, the key is Unknown instead (see
// statement.conditionHolds: the check fails closed).
func (a *arns) setLeadingKeys(c *Call, table string, items ...map[string]types.AttributeValue) {
	pk, ok := a.partitionKeys[tableName(table)]
	if !ok {
		c.unknown(fmt.Sprintf("the template declares no table %s, so its partition key is unknown", tableName(table)))
		return
	}
	values := []string{}
	for _, it := range items {
		v, why := keyValue(it[pk])
		if why != "" {
			c.unknown(fmt.Sprintf("partition key %s: %s", pk, why))
			return
		}
		values = append(values, v)
	}
	slices.Sort(values)
	c.Sets = map[string][]string{LeadingKeysKey: slices.Compact(values)}
}

func (c *Call) unknown(why string) {
	c.Sets = nil
	c.Unknown = map[string]string{LeadingKeysKey: why}
}

// keyValue is the string IAM compares for a key attribute's value.
func keyValue(v types.AttributeValue) (string, string) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return v.Value, ""
	case *types.AttributeValueMemberN:
		return v.Value, ""
	case nil:
		return "", "missing from the request"
	}
	return "", fmt.Sprintf("a %T, not a string or a number", v)
}

// keyClause is one comparison of a key condition expression that can name
// the partition key: "#pk = :pk", "pk=:v", ":v = pk", in parentheses or not.
var keyClause = regexp.MustCompile(`^\(?\s*([#:]?[A-Za-z0-9_.-]+)\s*=\s*([#:]?[A-Za-z0-9_.-]+)\s*\)?$`)

// andSplit splits a key condition expression at its ANDs (a BETWEEN's AND
// too: its halves match no equality, so no harm).
var andSplit = regexp.MustCompile(`(?i)\s+AND\s+`)

// setQueryLeadingKeys gives a Query's call the partition-key value its key
// condition names. A query of an index is Unknown: its leading key would be
// the index's, which the check does not model (no item-scoped statement
// grants an index).
func (a *arns) setQueryLeadingKeys(c *Call, in *dynamodb.QueryInput) {
	table := aws.ToString(in.TableName)
	if in.IndexName != nil {
		c.unknown("a query of index " + *in.IndexName + ": the check models the leading keys of tables only")
		return
	}
	pk, ok := a.partitionKeys[tableName(table)]
	if !ok {
		a.setLeadingKeys(c, table) // says why
		return
	}
	item := map[string]types.AttributeValue{}
	if cond, ok := in.KeyConditions[pk]; ok && cond.ComparisonOperator == types.ComparisonOperatorEq && len(cond.AttributeValueList) == 1 {
		item[pk] = cond.AttributeValueList[0]
	}
	name := func(s string) string {
		if strings.HasPrefix(s, "#") {
			return in.ExpressionAttributeNames[s]
		}
		return s
	}
	for _, clause := range andSplit.Split(aws.ToString(in.KeyConditionExpression), -1) {
		m := keyClause.FindStringSubmatch(strings.TrimSpace(clause))
		if m == nil {
			continue
		}
		left, right := m[1], m[2]
		if strings.HasPrefix(left, ":") {
			left, right = right, left
		}
		if name(left) == pk && strings.HasPrefix(right, ":") {
			item[pk] = in.ExpressionAttributeValues[right]
		}
	}
	if item[pk] == nil {
		c.unknown(fmt.Sprintf("the key condition %q names no value of the partition key %s", aws.ToString(in.KeyConditionExpression), pk))
		return
	}
	a.setLeadingKeys(c, table, item)
}

// dynamoCalls are the calls of the DynamoDB item operations, each with its
// leading keys; ok is false for another operation.
func (a *arns) dynamoCalls(region, op string, params any) (calls []Call, ok bool) {
	call := func(action, table string, items ...map[string]types.AttributeValue) Call {
		c := Call{Action: action, Resource: a.table(region, table), Operation: op}
		a.setLeadingKeys(&c, table, items...)
		return c
	}
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		return []Call{call("dynamodb:GetItem", aws.ToString(in.TableName), in.Key)}, true
	case *dynamodb.PutItemInput:
		return []Call{call("dynamodb:PutItem", aws.ToString(in.TableName), in.Item)}, true
	case *dynamodb.UpdateItemInput:
		return []Call{call("dynamodb:UpdateItem", aws.ToString(in.TableName), in.Key)}, true
	case *dynamodb.DeleteItemInput:
		return []Call{call("dynamodb:DeleteItem", aws.ToString(in.TableName), in.Key)}, true
	case *dynamodb.QueryInput:
		c := Call{Action: "dynamodb:Query", Resource: index(a.table(region, aws.ToString(in.TableName)), in.IndexName), Operation: op}
		a.setQueryLeadingKeys(&c, in)
		return []Call{c}, true
	case *dynamodb.ScanInput:
		c := Call{Action: "dynamodb:Scan", Resource: index(a.table(region, aws.ToString(in.TableName)), in.IndexName), Operation: op}
		c.unknown("a Scan reads every partition: it has no leading keys")
		return []Call{c}, true
	case *dynamodb.BatchGetItemInput:
		// A batch is authorized once per table, on all its items there.
		var out []Call
		for _, t := range keys(in.RequestItems) {
			out = append(out, call("dynamodb:BatchGetItem", t, in.RequestItems[t].Keys...))
		}
		return out, true
	case *dynamodb.BatchWriteItemInput:
		var out []Call
		for _, t := range keys(in.RequestItems) {
			var items []map[string]types.AttributeValue
			for _, w := range in.RequestItems[t] {
				switch {
				case w.PutRequest != nil:
					items = append(items, w.PutRequest.Item)
				case w.DeleteRequest != nil:
					items = append(items, w.DeleteRequest.Key)
				}
			}
			out = append(out, call("dynamodb:BatchWriteItem", t, items...))
		}
		return out, true
	case *dynamodb.TransactWriteItemsInput:
		// IAM authorizes a transaction item by item, as the single-item
		// actions: one forbidden item denies the whole transaction.
		var out []Call
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil:
				out = append(out, call("dynamodb:PutItem", aws.ToString(it.Put.TableName), it.Put.Item))
			case it.Update != nil:
				out = append(out, call("dynamodb:UpdateItem", aws.ToString(it.Update.TableName), it.Update.Key))
			case it.Delete != nil:
				out = append(out, call("dynamodb:DeleteItem", aws.ToString(it.Delete.TableName), it.Delete.Key))
			case it.ConditionCheck != nil:
				out = append(out, call("dynamodb:ConditionCheckItem", aws.ToString(it.ConditionCheck.TableName), it.ConditionCheck.Key))
			}
		}
		return dedupe(out), true
	case *dynamodb.TransactGetItemsInput:
		var out []Call
		for _, it := range in.TransactItems {
			if it.Get != nil {
				out = append(out, call("dynamodb:GetItem", aws.ToString(it.Get.TableName), it.Get.Key))
			}
		}
		return dedupe(out), true
	}
	return nil, false
}
