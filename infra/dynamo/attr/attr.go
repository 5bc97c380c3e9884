// Package attr reads typed values out of DynamoDB items, with errors that name
// the attribute at fault. The event store and the read model share it.
package attr

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// String returns the S attribute name of item.
func String(item map[string]types.AttributeValue, name string) (string, error) {
	switch v := item[name].(type) {
	case *types.AttributeValueMemberS:
		return v.Value, nil
	case nil:
		return "", fmt.Errorf("attribute %s missing", name)
	default:
		return "", fmt.Errorf("attribute %s is %T, want S", name, v)
	}
}

// Int returns the N attribute name of item as an int64.
func Int(item map[string]types.AttributeValue, name string) (int64, error) {
	switch v := item[name].(type) {
	case *types.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("attribute %s: %w", name, err)
		}
		return n, nil
	case nil:
		return 0, fmt.Errorf("attribute %s missing", name)
	default:
		return 0, fmt.Errorf("attribute %s is %T, want N", name, v)
	}
}

// Time returns the S attribute name of item, an RFC 3339 time, in UTC.
func Time(item map[string]types.AttributeValue, name string) (time.Time, error) {
	s, err := String(item, name)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("attribute %s: %w", name, err)
	}
	return t.UTC(), nil
}
