package rebuild_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/feed"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/rebuild/rebuildtest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// BenchmarkFeedCatchUp: the catch-up rate of a projection (the user view,
// rebuilt into a new generation) from the feed, in commit order, pages of
// 1,000, against the parallel-scan rebuild (4 segments) of the same
// events, interleaved: each round runs both, in alternating order. 10,000
// events (2,000 users of 5) unless CHRONICLE_FEED_EVENTS says otherwise,
// 3 rounds, the median reported; the events table has the feed's index and
// no stream.
//
//	go run ./cmd/emulators -- go test -run '^$' -bench FeedCatchUp -benchtime 1x ./infra/rebuild/
func BenchmarkFeedCatchUp(b *testing.B) {
	events := 10_000
	if v := os.Getenv("CHRONICLE_FEED_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 {
			b.Fatalf("CHRONICLE_FEED_EVENTS=%q", v)
		}
		events = n
	}
	const perUser = 5
	ctx := b.Context()
	client := awstest.DynamoDB(b)
	table := feedEventsTable(b, client)
	store := dynamo.New(client, dynamo.Tables{Events: table}, dynamo.WithFeedWindow(0))
	if _, err := rebuildtest.Seed(ctx, client, table, events/perUser, perUser, 4); err != nil {
		b.Fatal(err)
	}
	rmName := awstest.TableName("readmodel")
	if err := userviews.CreateTable(ctx, client, rmName); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = readmodel.DeleteTable(ctx, client, rmName)
	})
	rm := readmodel.New(client, rmName, readmodel.WithGenerationTTL(0))
	rb := rebuild.New(client, table, store, rm, user.NewRegistry(), userviews.Projections(), slog.New(slog.DiscardHandler))
	cps := feed.NewCheckpoints(client, rmName)
	run := func(o rebuild.Options) float64 {
		res, err := rb.Run(ctx, userviews.ProjectionUserView, o)
		if err != nil || !res.Done || res.RunEvents != int64(events/perUser*perUser) {
			b.Fatalf("%+v %v", res, err)
		}
		return float64(res.RunEvents) / res.Elapsed.Seconds()
	}
	// Rounds within one iteration, the order alternating, so that the
	// seeding is done once.
	const rounds = 3
	for b.Loop() {
		var scanRates, feedRates []float64
		for r := range rounds {
			scan := func() { scanRates = append(scanRates, run(rebuild.Options{Segments: 4, Settle: -1})) }
			fromFeed := func() {
				feedRates = append(feedRates, run(rebuild.Options{Settle: -1, Feed: &rebuild.FeedSource{Feed: store, Checkpoints: cps}}))
			}
			if r%2 == 0 {
				scan()
				fromFeed()
			} else {
				fromFeed()
				scan()
			}
		}
		slices.Sort(scanRates)
		slices.Sort(feedRates)
		b.ReportMetric(feedRates[rounds/2], "feed-events/s")
		b.ReportMetric(scanRates[rounds/2], "scan-events/s")
		b.ReportMetric(feedRates[rounds/2]/scanRates[rounds/2], "feed/scan")
		b.Logf("feed %v events/s, scan %v events/s", feedRates, scanRates)
	}
	b.ReportMetric(0, "ns/op")
}

// feedEventsTable creates an events table with the feed's index (declared
// at creation, as template.yaml does) and no stream, so that seeding is
// fast; it is deleted when the benchmark ends.
func feedEventsTable(tb testing.TB, client *dynamodb.Client) string {
	tb.Helper()
	name := awstest.TableName("events-feed-nostream")
	_, err := client.CreateTable(tb.Context(), &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String("fs"), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String("fk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(dynamo.FeedIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("fs"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("fk"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}
