package loadtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/simlatency"
)

// usersPerClient are the users each client renames in turn: distinct per
// client, so that clients never race for a user.
const usersPerClient = 2

// BenchmarkCommandThroughput: commands per second, and their p50 and p99,
// through the HTTP API at 1, 8 and 32 concurrent clients, each sending its
// next command when the previous one is answered: renames of the client's
// own users, and one create in ten. Its floor is the same clients against
// an HTTP server on the same machine whose handler decodes the body and
// writes one conditional PutItem to the same DynamoDB Local (a table
// without a stream). The service's phase and the floor's alternate.
//
// The service runs writeOnly's template: the read side idle and no stream
// on the events table, as nothing reads it. In AWS the relay, projector
// and notifier run on other machines than the commands; here they would
// take half of the two cores the API has. CHRONICLE_BENCH_READ_SIDE=1
// serves template.yaml as it is instead, the read side running, each phase
// starting once it has caught up with the previous one.
//
// CHRONICLE_BENCH_PHASE sets how long each phase lasts (default 4s), and
// CHRONICLE_SIM_LATENCY a delay added to every AWS call of both (package
// infra/simlatency; BenchmarkCommandLatency sets one itself).
func BenchmarkCommandThroughput(b *testing.B) {
	throughput(b, []int{1, 8, 32})
}

// BenchmarkCommandLatency is BenchmarkCommandThroughput at 1 and 8 clients
// with every AWS call of the service and of the floor delayed as in a
// region (CHRONICLE_SIM_LATENCY, default simlatency.Default): a command
// that makes one DynamoDB call, as the floor does, pays one round trip.
func BenchmarkCommandLatency(b *testing.B) {
	if os.Getenv(simlatency.EnvVar) == "" {
		b.Setenv(simlatency.EnvVar, simlatency.Default)
	}
	b.Logf("simulated latency: %s", os.Getenv(simlatency.EnvVar))
	throughput(b, []int{1, 8})
}

func throughput(b *testing.B, clientCounts []int) {
	phase := durationSetting(b, "CHRONICLE_BENCH_PHASE", 4*time.Second)
	tpl := templatePath
	if os.Getenv("CHRONICLE_BENCH_READ_SIDE") == "" {
		tpl = writeOnly(b)
	}
	s := startService(b, tpl)
	floor := startFloorAPI(b)
	users := s.createUsers(b, slices.Max(clientCounts)*usersPerClient)
	for _, clients := range clientCounts {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			var subject, base load
			for b.Loop() {
				s.quiesce(b)
				subject = drive(b, s.base, s.token, clients, phase, users)
				s.quiesce(b)
				base = drive(b, floor, s.token, clients, phase, users)
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(subject.rate(), "cmd/s")
			b.ReportMetric(ms(percentile(subject.took, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(subject.took, 0.99)), "p99-ms")
			b.ReportMetric(float64(subject.errors), "errors")
			b.ReportMetric(base.rate(), "floor-cmd/s")
			b.ReportMetric(ms(percentile(base.took, 0.50)), "floor-p50-ms")
			b.ReportMetric(ms(percentile(base.took, 0.99)), "floor-p99-ms")
		})
	}
}

// load is what one phase measured.
type load struct {
	took    []time.Duration // of each successful command
	errors  int
	elapsed time.Duration
}

func (l load) rate() float64 { return float64(len(l.took)) / l.elapsed.Seconds() }

// drive runs clients closed-loop clients against base for d: each renames
// its own users in turn, and creates a user every tenth command.
func drive(b *testing.B, base, token string, clients int, d time.Duration, users []string) load {
	var (
		mu  sync.Mutex
		out load
		wg  sync.WaitGroup
	)
	ctx := b.Context()
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		wg.Go(func() {
			var took []time.Duration
			errors := 0
			for k := 0; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
				r := rename(users[c*usersPerClient+k%usersPerClient], fmt.Sprintf("Bench %d.%d.%d", c, k, start.UnixNano()))
				if k%10 == 9 {
					r = create(k)
				}
				res := send(ctx, base, token, r)
				if res.err != nil {
					if errors == 0 {
						b.Logf("client %d: %v", c, res.err)
					}
					errors++
					continue
				}
				took = append(took, res.took)
			}
			mu.Lock()
			out.took = append(out.took, took...)
			out.errors += errors
			mu.Unlock()
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

// startFloorAPI serves the throughput floor until the benchmark ends and
// returns its base URL: every command route answers as the API does, after
// decoding the body and writing one conditional PutItem of a new item.
func startFloorAPI(b *testing.B) string {
	b.Helper()
	client := awstest.DynamoDB(b)
	table := newTable(b, client, "bench-floor-api", false, false)
	h := func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := uuid.Must(uuid.NewV7()).String()
		_, err := client.PutItem(r.Context(), &dynamodb.PutItemInput{
			TableName: aws.String(table),
			Item: map[string]types.AttributeValue{
				"pk":   &types.AttributeValueMemberS{Value: id},
				"name": &types.AttributeValueMemberS{Value: body["name"]},
			},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		status := http.StatusOK
		if r.Method == http.MethodPost {
			status = http.StatusCreated
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"id":"` + id + `","version":` + strconv.Itoa(1) + `}`))
	}
	srv := httptest.NewServer(http.HandlerFunc(h))
	b.Cleanup(srv.Close)
	return srv.URL
}
