package pii_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/pii"
	"github.com/chronicle-go/chronicle/infra/simlatency"
)

// createRounds is how many creates each way the warm-create figures time;
// createSimLatency the round trips they add for a region's figures.
const (
	createRounds     = 30
	createSimLatency = "dynamodb=4ms,kms=4ms"
)

// BenchmarkPIIFigures: what sealing personal data costs, on DynamoDB
// Local and moto's KMS (make bench's pii group, cmd/bench/pii.go). Each
// run reports:
//
//   - the p50 of a warm rename with the personal fields sealed and without,
//     interleaved command by command (the machine is noisy);
//
//   - the replay of a 10,000-event stream (load + open + decode + fold),
//     sealed and in clear, interleaved;
//
//   - the p50 of a create in a cold container (no key cached): the user's
//     data key and the guard secret fetched at once, as the store does,
//     against the two fetched one after the other (the guard secret first,
//     as the store did before), interleaved;
//
//   - the KMS calls of a create (cold and warm container), a rename and an
//     email change in a cold container, and a warm command.
//
//     go run ./cmd/emulators -- go test -run '^$' -bench PIIFigures -benchtime 1x ./infra/pii/
func BenchmarkPIIFigures(b *testing.B) {
	for range b.N {
		piiFigures(b)
	}
}

func piiFigures(b *testing.B) {
	f := newFixture(b, 0)
	ctx := b.Context()
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Millisecond)
	}

	// Warm commands.
	plain := es.NewService(user.Decider(), user.NewRegistry(), dynamo.New(f.ddb, f.tables), es.Options{CacheSize: 16})
	sealed := es.NewService(user.Decider(), user.NewRegistry(), f.store, es.Options{CacheSize: 16})
	idP, idS := uuid.NewString(), uuid.NewString()
	type run struct {
		svc *es.Service[user.State, user.Command]
		id  string
		out *[]time.Duration
	}
	for _, x := range []run{{plain, idP, nil}, {sealed, idS, nil}} {
		if _, err := x.svc.Execute(ctx, x.id, user.Create{Name: "Bench Mark", Email: x.id[:8] + "@bench.example"}, es.ExecOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	const commands = 100
	var dp, ds []time.Duration
	for i := range commands {
		runs := []run{{plain, idP, &dp}, {sealed, idS, &ds}}
		if i%2 == 1 {
			runs[0], runs[1] = runs[1], runs[0]
		}
		for _, x := range runs {
			start := time.Now()
			if _, err := x.svc.Execute(ctx, x.id, user.Rename{Name: fmt.Sprintf("Bench Mark %d", i)}, es.ExecOptions{}); err != nil {
				b.Fatal(err)
			}
			*x.out = append(*x.out, time.Since(start))
		}
	}
	b.ReportMetric(p50(dp), "plain-p50-ms")
	b.ReportMetric(p50(ds), "sealed-p50-ms")

	// A 10,000-event stream of renames each way, written directly (sealed
	// by the cipher first for the sealed one), in transactions of 50.
	const events = 10_000
	rp, rs := uuid.NewString(), uuid.NewString()
	raw := dynamo.New(f.ddb, f.tables)
	for _, x := range []struct {
		id   string
		seal bool
	}{{rp, false}, {rs, true}} {
		recs := make([]es.Record, events)
		at := time.Now().UTC()
		for i := range recs {
			recs[i] = es.Record{ID: uuid.NewString(), AggregateID: x.id, AggregateType: "user", Version: int64(i + 1),
				Type: "user.renamed.v1", SchemaVersion: 1, OccurredAt: at, Data: fmt.Appendf(nil, `{"name":"Name %d"}`, i)}
		}
		recs[0].Type, recs[0].Data = "user.created.v1", []byte(`{"name":"First","email":"first@bench.example"}`)
		if x.seal {
			var err error
			if recs, err = f.cipher.Seal(ctx, recs); err != nil {
				b.Fatal(err)
			}
		}
		for lo := 0; lo < events; lo += 50 {
			if err := raw.Append(ctx, es.AppendRequest{AggregateID: x.id, ExpectedVersion: int64(lo), Records: recs[lo : lo+50]}); err != nil {
				b.Fatal(err)
			}
		}
	}
	var lp, ls []time.Duration
	for i := range 3 {
		runs := []run{{plain, rp, &lp}, {sealed, rs, &ls}}
		if i%2 == 1 {
			runs[0], runs[1] = runs[1], runs[0]
		}
		for _, x := range runs {
			start := time.Now()
			agg, err := x.svc.Load(ctx, x.id)
			if err != nil || agg.Version != events {
				b.Fatalf("replay: v%d, %v", agg.Version, err)
			}
			*x.out = append(*x.out, time.Since(start))
		}
	}
	b.ReportMetric(p50(lp), "plain-replay-ms")
	b.ReportMetric(p50(ls), "sealed-replay-ms")

	// Creates in cold containers: a new Keys (no key, no guard secret
	// cached) per create. "seq" fetches the guard secret first, then
	// creates: what a cold create cost before the store hashed the guard
	// keys while it sealed.
	const colds = 7
	var cp, cs []time.Duration
	for i := range colds {
		for _, seq := range []bool{i%2 == 0, i%2 == 1} {
			c := coldContainer(b, f)
			id := uuid.NewString()
			start := time.Now()
			if seq {
				if _, err := c.cipher.GuardKey(ctx, user.EmailKey("warm@bench.example")); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := c.svc.Execute(ctx, id, user.Create{Name: "Cold Start", Email: id[:8] + "@cold.example"}, es.ExecOptions{}); err != nil {
				b.Fatal(err)
			}
			if seq {
				cs = append(cs, time.Since(start))
			} else {
				cp = append(cp, time.Since(start))
			}
		}
	}
	b.ReportMetric(p50(cp), "cold-create-p50-ms")
	b.ReportMetric(p50(cs), "cold-create-seq-p50-ms")

	// KMS calls per command.
	calls := func(c *coldC) float64 { g, d := c.keys.Calls.Snapshot(); return float64(g + d) }
	c := coldContainer(b, f)
	id := uuid.NewString()
	exec := func(c *coldC, cmd user.Command) float64 {
		before := calls(c)
		if _, err := c.svc.Execute(ctx, id, cmd, es.ExecOptions{}); err != nil {
			b.Fatal(err)
		}
		return calls(c) - before
	}
	b.ReportMetric(exec(c, user.Create{Name: "Kay Emess", Email: id[:8] + "@kms.example"}), "kms-create-cold")
	id = uuid.NewString()
	b.ReportMetric(exec(c, user.Create{Name: "Kay Emess", Email: id[:8] + "@kms.example"}), "kms-create-warm")
	b.ReportMetric(exec(c, user.Rename{Name: "Kay"}), "kms-warm")
	b.ReportMetric(exec(coldContainer(b, f), user.Rename{Name: "Kay E"}), "kms-rename-cold")
	b.ReportMetric(exec(coldContainer(b, f), user.ChangeEmail{Email: id[:8] + "@kms2.example"}), "kms-email-cold")
}

// BenchmarkCreateFigures: the p50 of a create in a warm container (the
// guard secret cached), its user's key item in the create's transaction
// against a PutItem of its own before it (as before), interleaved, on the
// emulators and with createSimLatency added to every DynamoDB and KMS
// call; and the DynamoDB calls of a create each way (make bench's pii
// group).
//
//	go run ./cmd/emulators -- go test -run '^$' -bench CreateFigures -benchtime 1x ./infra/pii/
func BenchmarkCreateFigures(b *testing.B) {
	for range b.N {
		createFigures(b)
	}
}

func createFigures(b *testing.B) {
	f := newFixture(b, 0)
	ctx := b.Context()
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Millisecond)
	}
	delays, err := simlatency.Parse(createSimLatency)
	if err != nil {
		b.Fatal(err)
	}
	simCfg := awstest.Config(b)
	simCfg.APIOptions = append(simCfg.APIOptions, delays.APIOption())
	for _, sim := range []bool{false, true} {
		var cfg *aws.Config
		km := kms.NewFromConfig(awstest.Config(b))
		if sim {
			cfg, km = &simCfg, kms.NewFromConfig(simCfg)
		}
		boxes := [2]*box{newBoxKMS(b, f, cfg, false, km), newBoxKMS(b, f, cfg, true, km)}
		var times [2][]time.Duration
		for i := range createRounds + 2 {
			for j := range boxes {
				x := boxes[(i+j)%2]
				id := uuid.NewString()
				start := time.Now()
				if _, err := x.create(ctx, id, id[:8]+"@tx.bench.example", "idem-"+id); err != nil {
					b.Fatal(err)
				}
				if i >= 2 { // the first two make the guard secret's read
					times[(i+j)%2] = append(times[(i+j)%2], time.Since(start))
				}
			}
		}
		suffix := ""
		if sim {
			suffix = "-simlat"
		}
		b.ReportMetric(p50(times[0]), "create"+suffix+"-p50-ms")
		b.ReportMetric(p50(times[1]), "create"+suffix+"-keyput-p50-ms")
		if !sim {
			// The DynamoDB calls of one more create each way.
			for i, metric := range []string{"ddb-create-warm", "ddb-create-warm-keyput"} {
				id := uuid.NewString()
				boxes[i].ops.take()
				if _, err := boxes[i].create(ctx, id, id[:8]+"@tx.bench.example", ""); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(boxes[i].ops.take())), metric)
			}
		}
	}

}

// coldC is a container that has cached nothing yet.
type coldC struct {
	keys   *pii.Keys
	cipher *pii.Cipher
	svc    *es.Service[user.State, user.Command]
}

func coldContainer(b *testing.B, f *fixture) *coldC {
	keys, err := pii.NewKeys(kms.NewFromConfig(awstest.Config(b)), f.ddb, f.keys.Config())
	if err != nil {
		b.Fatal(err)
	}
	reg := user.NewRegistry()
	c := pii.NewCipher(keys, reg)
	svc := es.NewService(user.Decider(), reg, dynamo.New(f.ddb, f.tables, dynamo.WithCipher(c)), es.Options{CacheSize: 16})
	return &coldC{keys: keys, cipher: c, svc: svc}
}
