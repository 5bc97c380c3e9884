package relay

import (
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Item converts a stream image, in aws-lambda-go's representation, to the
// SDK's, which the event store's codec reads.
func Item(image map[string]events.DynamoDBAttributeValue) (map[string]ddbtypes.AttributeValue, error) {
	item := make(map[string]ddbtypes.AttributeValue, len(image))
	for name, av := range image {
		v, err := AttributeValue(av)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		item[name] = v
	}
	return item, nil
}

// AttributeValue converts one attribute value, recursively.
func AttributeValue(av events.DynamoDBAttributeValue) (ddbtypes.AttributeValue, error) {
	switch av.DataType() {
	case events.DataTypeString:
		return &ddbtypes.AttributeValueMemberS{Value: av.String()}, nil
	case events.DataTypeNumber:
		return &ddbtypes.AttributeValueMemberN{Value: av.Number()}, nil
	case events.DataTypeBinary:
		return &ddbtypes.AttributeValueMemberB{Value: av.Binary()}, nil
	case events.DataTypeBoolean:
		return &ddbtypes.AttributeValueMemberBOOL{Value: av.Boolean()}, nil
	case events.DataTypeNull:
		return &ddbtypes.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeStringSet:
		return &ddbtypes.AttributeValueMemberSS{Value: av.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &ddbtypes.AttributeValueMemberNS{Value: av.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &ddbtypes.AttributeValueMemberBS{Value: av.BinarySet()}, nil
	case events.DataTypeList:
		list := av.List()
		out := make([]ddbtypes.AttributeValue, len(list))
		for i, e := range list {
			v, err := AttributeValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = v
		}
		return &ddbtypes.AttributeValueMemberL{Value: out}, nil
	case events.DataTypeMap:
		m, err := Item(av.Map())
		if err != nil {
			return nil, err
		}
		return &ddbtypes.AttributeValueMemberM{Value: m}, nil
	default:
		return nil, fmt.Errorf("unsupported attribute type %v", av.DataType())
	}
}
