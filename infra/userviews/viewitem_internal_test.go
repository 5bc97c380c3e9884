package userviews

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// The user view item is written by hand (viewItem, viewFromItem). avView is
// the same item as a struct tagged for the SDK's attributevalue package: the
// codec it would replace. TestAttributeValueViewItem proves the two encode
// alike; BenchmarkViewItemCodec measures both, interleaved.

type avView struct {
	PK      string `dynamodbav:"pk"`
	SK      string `dynamodbav:"sk"`
	View    string `dynamodbav:"view"` // the user.View as JSON, as stored
	Version int64  `dynamodbav:"version"`
	ListPK  string `dynamodbav:"listPk,omitempty"`
	ListSK  string `dynamodbav:"listSk,omitempty"`
}

func avViewItem(g int64, id string, v user.View, body []byte) (map[string]types.AttributeValue, error) {
	item := avView{PK: readmodel.GenerationPK(g, userPK(id)), SK: skView, View: string(body), Version: v.Version}
	if listed(v) {
		item.ListPK, item.ListSK = listPK(g, v.Status, shardOf(id)), listSK(v.CreatedAt, id)
	}
	return attributevalue.MarshalMap(item)
}

func avViewFromItem(item map[string]types.AttributeValue) (user.View, error) {
	var it avView
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return user.View{}, err
	}
	var v user.View
	if err := json.Unmarshal([]byte(it.View), &v); err != nil {
		return user.View{}, fmt.Errorf("decode view: %w", err)
	}
	return v, nil
}

func codecViews() []user.View {
	at := time.Date(2026, 12, 2, 5, 30, 0, 123456789, time.UTC)
	return []user.View{
		{ID: "u1", Version: 3, Name: "Alice", Email: "alice@example.com", Sub: "sub-1", Status: user.StatusActive,
			CreatedAt: at, UpdatedAt: at.Add(time.Hour)},
		{ID: "u2", Version: 1, Name: "Bob", Email: "bob@example.com", Status: user.StatusSuspended, CreatedAt: at, UpdatedAt: at},
		{ID: "u3", Version: 9, Name: "Carol", Email: "carol@example.com", Status: user.StatusDeleted, CreatedAt: at,
			UpdatedAt: at, DeletedAt: at, DeletedBy: "admin", DeleteReason: "left", Forgotten: true, ForgottenAt: at,
			ForgottenBy: "admin", ForgetReason: "asked"},
	}
}

// TestAttributeValueViewItem: attributevalue would write the very items
// viewItem writes, listed or not, in the first generation and later ones,
// and each reader reads both to the same view.
func TestAttributeValueViewItem(t *testing.T) {
	for _, g := range []int64{1, 3} {
		for _, v := range codecViews() {
			body, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			hand := viewItem(g, v.ID, v, body)
			av, err := avViewItem(g, v.ID, v, body)
			if err != nil {
				t.Fatalf("MarshalMap: %v", err)
			}
			if !reflect.DeepEqual(hand, av) {
				t.Errorf("generation %d, view %s (%s):\nhand           %v\nattributevalue %v", g, v.ID, v.Status, hand, av)
			}
			fromHand, err := viewFromItem(av)
			if err != nil {
				t.Fatal(err)
			}
			fromAV, err := avViewFromItem(hand)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromHand, v) || !reflect.DeepEqual(fromAV, v) {
				t.Errorf("view %s read back: hand %+v, attributevalue %+v, want %+v", v.ID, fromHand, fromAV, v)
			}
		}
	}
}

// BenchmarkViewItemCodec: the hand-written user view item codec against
// attributevalue, side by side. -count would run each sub-benchmark its
// count times in a row, so the machine's load would differ between the two;
// run rounds of all four instead, and compare each round's pair:
//
//	go test -c -o /tmp/userviews.test ./infra/userviews/
//	for i in $(seq 60); do /tmp/userviews.test -test.run '^$' -test.bench ViewItemCodec -test.benchtime 30ms; done
//
// encode is the item around a view's JSON body (made once, as the store
// makes it before either codec runs); decode reads the item and its body
// back into a view, as viewFromItem does. json is the body's encoding and
// decoding alone, for scale. The figures are at viewItem.
func BenchmarkViewItemCodec(b *testing.B) {
	v := codecViews()[0] // active: listed, so the index keys are written too
	body, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	item := viewItem(2, v.ID, v, body)
	b.Run("encode/hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkViewItem = viewItem(2, v.ID, v, body)
		}
	})
	b.Run("encode/attributevalue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkViewItem, _ = avViewItem(2, v.ID, v, body)
		}
	})
	b.Run("decode/hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkView, _ = viewFromItem(item)
		}
	})
	b.Run("decode/attributevalue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkView, _ = avViewFromItem(item)
		}
	})
	b.Run("json/both-ways", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, _ := json.Marshal(v)
			var back user.View
			_ = json.Unmarshal(out, &back)
			sinkView = back
		}
	})
}

var (
	sinkViewItem map[string]types.AttributeValue
	sinkView     user.View
)
