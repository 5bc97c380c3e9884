package relay_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewJSONHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fixtureRecord is the record in testdata/relay/stream-user-created.json.
var fixtureRecord = es.Record{
	ID:            "0195a3c2-7a11-7f00-8a6e-2c4d9b1e3f02",
	AggregateID:   "0195a3c2-7a10-7c3e-9d2b-5f1e8a4b6c01",
	AggregateType: "user",
	Version:       1,
	Type:          "user.created.v1",
	SchemaVersion: 1,
	OccurredAt:    time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
	Data:          json.RawMessage(`{"name":"Ada Lovelace","email":"ada@example.com","sub":"auth0|ada"}`),
	Metadata:      es.Metadata{Actor: "auth0|ada", CorrelationID: "req-7f3a", RequestID: "req-7f3a"},
}

func fixture(t *testing.T) events.DynamoDBEvent {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/relay/stream-user-created.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestRecordFromImage(t *testing.T) {
	t.Parallel()
	ev := fixture(t)
	got, err := relay.RecordFromImage(ev.Records[0].Change.NewImage)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fixtureRecord, got) {
		t.Errorf("record:\ngot  %+v\nwant %+v", got, fixtureRecord)
	}

	// The event store's own items, through the Lambda representation and back.
	rec := fixtureRecord
	rec.Metadata = es.Metadata{}
	for _, r := range []es.Record{fixtureRecord, rec} {
		item := dynamo.ItemFromRecord(r)
		image := map[string]events.DynamoDBAttributeValue{}
		raw, _ := json.Marshal(lambdaImage(item))
		if err := json.Unmarshal(raw, &image); err != nil {
			t.Fatal(err)
		}
		back, err := relay.RecordFromImage(image)
		if err != nil || !reflect.DeepEqual(r, back) {
			t.Errorf("round trip: %+v, %v\nwant %+v", back, err, r)
		}
	}

	delete(ev.Records[0].Change.NewImage, "type")
	if _, err := relay.RecordFromImage(ev.Records[0].Change.NewImage); err == nil {
		t.Error("image without a type decoded")
	}
}

// lambdaImage is the stream's JSON shape of an item.
func lambdaImage(item map[string]ddbtypes.AttributeValue) map[string]any {
	out := map[string]any{}
	for k, v := range item {
		switch v := v.(type) {
		case *ddbtypes.AttributeValueMemberS:
			out[k] = map[string]string{"S": v.Value}
		case *ddbtypes.AttributeValueMemberN:
			out[k] = map[string]string{"N": v.Value}
		case *ddbtypes.AttributeValueMemberM:
			out[k] = map[string]any{"M": lambdaImage(v.Value)}
		}
	}
	return out
}

func TestAttributeValue(t *testing.T) {
	t.Parallel()
	in := events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{
		"s":  events.NewStringAttribute("x"),
		"n":  events.NewNumberAttribute("12.5"),
		"b":  events.NewBinaryAttribute([]byte{1, 2}),
		"t":  events.NewBooleanAttribute(true),
		"0":  events.NewNullAttribute(),
		"ss": events.NewStringSetAttribute([]string{"a", "b"}),
		"ns": events.NewNumberSetAttribute([]string{"1", "2"}),
		"bs": events.NewBinarySetAttribute([][]byte{{3}}),
		"l":  events.NewListAttribute([]events.DynamoDBAttributeValue{events.NewStringAttribute("y")}),
	})
	got, err := relay.AttributeValue(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{
		"s":  &ddbtypes.AttributeValueMemberS{Value: "x"},
		"n":  &ddbtypes.AttributeValueMemberN{Value: "12.5"},
		"b":  &ddbtypes.AttributeValueMemberB{Value: []byte{1, 2}},
		"t":  &ddbtypes.AttributeValueMemberBOOL{Value: true},
		"0":  &ddbtypes.AttributeValueMemberNULL{Value: true},
		"ss": &ddbtypes.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"ns": &ddbtypes.AttributeValueMemberNS{Value: []string{"1", "2"}},
		"bs": &ddbtypes.AttributeValueMemberBS{Value: [][]byte{{3}}},
		"l":  &ddbtypes.AttributeValueMemberL{Value: []ddbtypes.AttributeValue{&ddbtypes.AttributeValueMemberS{Value: "y"}}},
	}}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("converted:\ngot  %#v\nwant %#v", got, want)
	}
}

func TestParseRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    relay.Routes
		wantErr bool
	}{
		{in: "user.created.v1=URL1,URL2;*=URL3", want: relay.Routes{"user.created.v1": {"URL1", "URL2"}, "*": {"URL3"}}},
		{in: " a = u1 , u2 ; a=u2,u3 ;; ", want: relay.Routes{"a": {"u1", "u2", "u3"}}},
		{in: "*=https://sqs.us-east-1.amazonaws.com/123/p.fifo", want: relay.Routes{"*": {"https://sqs.us-east-1.amazonaws.com/123/p.fifo"}}},
		{in: "", wantErr: true},
		{in: "a", wantErr: true},
		{in: "=u", wantErr: true},
		{in: "a=u,,v", wantErr: true},
		{in: "a=", wantErr: true},
	}
	for _, tt := range tests {
		got, err := relay.ParseRoutes(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(tt.want, got)) {
			t.Errorf("ParseRoutes(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRoutesQueues(t *testing.T) {
	t.Parallel()
	rt := relay.Routes{"a": {"u1", "u2"}, "*": {"u2", "u3"}}
	for typ, want := range map[string][]string{"a": {"u1", "u2", "u3"}, "b": {"u2", "u3"}} {
		if got := rt.Queues(typ); !reflect.DeepEqual(want, got) {
			t.Errorf("Queues(%q) = %v, want %v", typ, got, want)
		}
	}
	if got := (relay.Routes{"a": {"u1"}}).Queues("b"); len(got) != 0 {
		t.Errorf("unrouted type: %v", got)
	}
}

func receiveAll(t *testing.T, client *sqs.Client, q *relaytest.Queue, want int) []events.SQSMessage {
	t.Helper()
	var got []events.SQSMessage
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		ev, err := relaytest.Receive(t.Context(), client, q, 10, 30)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Records...)
		if _, err := relaytest.Acknowledge(t.Context(), client, q, ev, events.SQSEventResponse{}); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing more is waiting.
	if ev, err := relaytest.Receive(t.Context(), client, q, 10, 30); err != nil || len(ev.Records) != 0 {
		t.Errorf("extra messages: %d, %v", len(ev.Records), err)
	}
	return got
}

func TestHandleFixture(t *testing.T) {
	t.Parallel()
	client := awstest.SQS(t)
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{})
	r := relay.New(client, relay.Routes{"user.created.v1": {q.URL}}, testLogger(t), time.Now)

	// The second call is the stream handing the same record again (a
	// retried batch): SQS drops the resend by its deduplication id. (moto
	// deduplicates only against messages still in the queue, where SQS
	// remembers ids for five minutes, so the resend comes before the
	// receive.)
	for range 2 {
		resp, err := r.Handle(t.Context(), fixture(t))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("Handle: %+v, %v", resp, err)
		}
	}
	msgs := receiveAll(t, client, q, 1)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if g, d := m.Attributes["MessageGroupId"], m.Attributes["MessageDeduplicationId"]; g != fixtureRecord.AggregateID || d != fixtureRecord.ID {
		t.Errorf("group %q, dedup %q", g, d)
	}
	got, err := relay.DecodeMessage(m.Body)
	if err != nil || !reflect.DeepEqual(fixtureRecord, got) {
		t.Errorf("body decodes to %+v, %v", got, err)
	}
}

// streamRecord is an INSERT of rec as the stream hands it to Lambda.
func streamRecord(t *testing.T, rec es.Record, seq int) events.DynamoDBEventRecord {
	t.Helper()
	raw, _ := json.Marshal(lambdaImage(dynamo.ItemFromRecord(rec)))
	var image map[string]events.DynamoDBAttributeValue
	if err := json.Unmarshal(raw, &image); err != nil {
		t.Fatal(err)
	}
	return events.DynamoDBEventRecord{
		EventName: "INSERT", EventSource: "aws:dynamodb",
		Change: events.DynamoDBStreamRecord{NewImage: image, SequenceNumber: fmt.Sprintf("%024d", seq), StreamViewType: "NEW_IMAGE"},
	}
}

func userRecords(id string, n int, typ string) []es.Record {
	recs := make([]es.Record, n)
	for i := range recs {
		recs[i] = es.Record{
			ID: uuid.NewString(), AggregateID: id, AggregateType: "user", Version: int64(i + 1), Type: typ,
			SchemaVersion: 1, OccurredAt: time.Now().UTC(), Data: json.RawMessage(`{"name":"x"}`),
		}
	}
	return recs
}

// Many events of one aggregate go out in several SendMessageBatch calls, in
// stream order; non-INSERT records are skipped; unrouted types are dropped.
func TestHandleSendsInOrder(t *testing.T) {
	t.Parallel()
	client := awstest.SQS(t)
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{})
	r := relay.New(client, relay.Routes{"user.renamed.v1": {q.URL}}, testLogger(t), time.Now)

	id := uuid.NewString()
	recs := userRecords(id, 25, "user.renamed.v1")
	var ev events.DynamoDBEvent
	for i, rec := range recs {
		ev.Records = append(ev.Records, streamRecord(t, rec, 2*i))
		if i == 3 {
			modify := streamRecord(t, rec, 2*i+1)
			modify.EventName = "MODIFY"
			ev.Records = append(ev.Records, modify)
		}
	}
	ev.Records = append(ev.Records, streamRecord(t, userRecords(id, 1, "user.unrouted.v1")[0], 99))
	resp, err := r.Handle(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v, %v", resp, err)
	}
	msgs := receiveAll(t, client, q, len(recs))
	if len(msgs) != len(recs) {
		t.Fatalf("%d messages, want %d", len(msgs), len(recs))
	}
	for i, m := range msgs {
		got, err := relay.DecodeMessage(m.Body)
		if err != nil || got.Version != int64(i+1) {
			t.Fatalf("message %d is v%d, %v", i, got.Version, err)
		}
	}
}

// A record that cannot be decoded or sent is reported with every record
// after it, whatever their queue; records before it are sent, and later
// ones are held back.
func TestHandleReportsFromFirstFailure(t *testing.T) {
	t.Parallel()
	client := awstest.SQS(t)
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{})
	missing := q.URL + "-missing.fifo"
	r := relay.New(client, relay.Routes{"user.renamed.v1": {q.URL}, "user.deleted.v1": {missing}}, testLogger(t), time.Now)

	a, b := userRecords(uuid.NewString(), 3, "user.renamed.v1"), userRecords(uuid.NewString(), 2, "user.renamed.v1")

	t.Run("undecodable", func(t *testing.T) {
		broken := streamRecord(t, b[0], 2)
		delete(broken.Change.NewImage, "occurredAt")
		ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
			streamRecord(t, a[0], 1), broken, streamRecord(t, a[1], 3), streamRecord(t, b[1], 4),
		}}
		resp, err := r.Handle(t.Context(), ev)
		if err != nil {
			t.Fatal(err)
		}
		want := []events.DynamoDBBatchItemFailure{{ItemIdentifier: fmt.Sprintf("%024d", 2)}, {ItemIdentifier: fmt.Sprintf("%024d", 3)}, {ItemIdentifier: fmt.Sprintf("%024d", 4)}}
		if !reflect.DeepEqual(want, resp.BatchItemFailures) {
			t.Errorf("failures %v, want %v", resp.BatchItemFailures, want)
		}
		msgs := receiveAll(t, client, q, 1)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Body, a[0].ID) {
			t.Errorf("sent %d messages, want only the record before the failure", len(msgs))
		}
	})

	t.Run("queue refuses", func(t *testing.T) {
		del := userRecords(uuid.NewString(), 1, "user.deleted.v1")[0]
		ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
			streamRecord(t, a[2], 10), streamRecord(t, del, 11), streamRecord(t, b[1], 12),
		}}
		resp, err := r.Handle(t.Context(), ev)
		if err != nil {
			t.Fatal(err)
		}
		want := []events.DynamoDBBatchItemFailure{{ItemIdentifier: fmt.Sprintf("%024d", 11)}, {ItemIdentifier: fmt.Sprintf("%024d", 12)}}
		if !reflect.DeepEqual(want, resp.BatchItemFailures) {
			t.Errorf("failures %v, want %v", resp.BatchItemFailures, want)
		}
	})
}

func TestDecodeMessage(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "{", `{"eventId":"e","aggregateId":"a","type":"t"}`, `{"eventId":"e","aggregateId":"a","version":1}`} {
		if _, err := relay.DecodeMessage(body); !errors.Is(err, relay.ErrBadMessage) {
			t.Errorf("DecodeMessage(%q): %v, want ErrBadMessage", body, err)
		}
	}
}

// Every SendMessageBatch reaches SQS and its reply is lost until the SDK's
// last attempt (faults.LostReplies): the SDK sends each batch again, with
// the same deduplication ids, which SQS FIFO drops within its five-minute
// window. The queue holds each event once, in order.
func TestHandleLostReplies(t *testing.T) {
	t.Parallel()
	in := faults.New(3)
	client := awstest.SQS(t)
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{})
	lossy := sqs.NewFromConfig(faults.WithLostReplies(awstest.Config(t), in, 1))
	r := relay.New(lossy, relay.Routes{"user.renamed.v1": {q.URL}}, testLogger(t), time.Now)

	recs := userRecords(uuid.NewString(), 25, "user.renamed.v1")
	var ev events.DynamoDBEvent
	for i, rec := range recs {
		ev.Records = append(ev.Records, streamRecord(t, rec, i))
	}
	resp, err := r.Handle(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v, %v", resp, err)
	}
	if n := in.Counts()["lostreply.SQS.SendMessageBatch"]; n == 0 {
		t.Fatal("no reply was lost")
	}
	msgs := receiveAll(t, client, q, len(recs))
	if len(msgs) != len(recs) {
		t.Fatalf("%d messages, want %d", len(msgs), len(recs))
	}
	for i, m := range msgs {
		got, err := relay.DecodeMessage(m.Body)
		if err != nil || got.ID != recs[i].ID {
			t.Fatalf("message %d is %s v%d, %v; want %s", i, got.ID, got.Version, err, recs[i].ID)
		}
	}
	t.Logf("faults: %s", in)
}
