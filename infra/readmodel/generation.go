package readmodel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// Generations make rebuilds blue/green. Every row a projection owns belongs
// to one generation of it; readers use the active generation, and a rebuild
// fills the next one (building) from the event store alone, then makes it
// the active one in a single conditional write. Readers never see a
// half-built view, and the old generation stays readable until the switch.
//
// While a generation is building, the live projector writes both the active
// one and the building one (WriteTargets), so the new generation follows the
// events that arrive during the rebuild: the rebuild's scan covers what was
// appended before it passed, the live projector what comes after.
//
// One item holds the generations of every projection. Without it each
// projection is at generation 1, whose keys have no prefix: a table written
// before generations existed reads as it always did.

// DefaultGenerationTTL is how long a store trusts the generations it read.
// A switch reaches every reader and writer within it; a rebuild waits at
// least that long after it starts building before it scans (see package
// rebuild), so that every projector writes the new generation by then.
const DefaultGenerationTTL = 5 * time.Second

// ErrNoBuild: the projection has no generation building, or not the one named.
var ErrNoBuild = errors.New("no such generation building")

// Generation is where a projection's rows are.
type Generation struct {
	Projection string
	Active     int64     // what readers use; 1 until a rebuild switches
	Building   int64     // the generation a rebuild is filling; 0 for none
	Latest     int64     // the highest generation ever allocated
	StartedAt  time.Time // when Building was allocated
	SwitchedAt time.Time // when Active last changed
}

const (
	pkGenerations = "generations"
	skGenerations = "generations"

	// attribute names are "<field>#<projection>"
	genActive     = "active#"
	genBuilding   = "building#"
	genLatest     = "latest#"
	genStartedAt  = "startedAt#"
	genSwitchedAt = "switchedAt#"
)

// genPK is pk in generation gen.
func genPK(gen int64, pk string) string {
	if gen <= 1 {
		return pk
	}
	return "g" + strconv.FormatInt(gen, 10) + "#" + pk
}

// SplitGeneration returns the generation of a partition key and the key
// without its prefix: "g3#user#x" is 3, "user#x"; "user#x" is 1, "user#x".
func SplitGeneration(pk string) (int64, string) {
	rest, ok := strings.CutPrefix(pk, "g")
	if !ok {
		return 1, pk
	}
	num, logical, ok := strings.Cut(rest, "#")
	if !ok {
		return 1, pk
	}
	g, err := strconv.ParseInt(num, 10, 64)
	if err != nil || g < 2 {
		return 1, pk
	}
	return g, logical
}

// genCache keeps the generations read from the table for ttl.
type genCache struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	read time.Time
	gens map[string]Generation
}

func (c *genCache) get() (map[string]Generation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens == nil || c.ttl <= 0 || c.now().Sub(c.read) >= c.ttl {
		return nil, false
	}
	return c.gens, true
}

func (c *genCache) put(g map[string]Generation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens, c.read = g, c.now()
}

func (c *genCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens = nil
}

// At returns a store whose rows of projection are those of generation gen,
// whatever the active one is: what a rebuild writes, and what the projector
// writes besides the active generation during one. It shares s's client and
// generation cache.
func (s *Store) At(projection string, gen int64) *Store {
	c := *s
	c.pinned = maps.Clone(s.pinned)
	if c.pinned == nil {
		c.pinned = map[string]int64{}
	}
	c.pinned[projection] = gen
	return &c
}

// WriteTargets returns the stores a writer of projection must keep up to
// date: the active generation, and the one building if any. A store made
// with At is its own only target.
func (s *Store) WriteTargets(ctx context.Context, projection string) ([]*Store, error) {
	if _, ok := s.pinned[projection]; ok {
		return []*Store{s}, nil
	}
	g, err := s.generation(ctx, projection)
	if err != nil {
		return nil, err
	}
	targets := []*Store{s.At(projection, g.Active)}
	if g.Building > 0 && g.Building != g.Active {
		targets = append(targets, s.At(projection, g.Building))
	}
	return targets, nil
}

// gen is the generation of projection's rows for s: pinned, or active.
func (s *Store) gen(ctx context.Context, projection string) (int64, error) {
	if g, ok := s.pinned[projection]; ok {
		return g, nil
	}
	g, err := s.generation(ctx, projection)
	if err != nil {
		return 0, err
	}
	return g.Active, nil
}

// generation is the cached generation of projection.
func (s *Store) generation(ctx context.Context, projection string) (Generation, error) {
	gens, ok := s.gens.get()
	if !ok {
		var err error
		if gens, err = s.readGenerations(ctx); err != nil {
			return Generation{}, err
		}
		s.gens.put(gens)
	}
	if g, ok := gens[projection]; ok {
		return g, nil
	}
	return Generation{Projection: projection, Active: 1, Latest: 1}, nil
}

// GenerationsOf returns the generation of each projection named, read
// consistently (no cache): a projection never rebuilt is at generation 1.
func (s *Store) GenerationsOf(ctx context.Context, projections []string) ([]Generation, error) {
	gens, err := s.readGenerations(ctx)
	if err != nil {
		return nil, err
	}
	s.gens.put(gens)
	out := make([]Generation, 0, len(projections))
	for _, p := range projections {
		g, ok := gens[p]
		if !ok {
			g = Generation{Projection: p, Active: 1, Latest: 1}
		}
		out = append(out, g)
	}
	return out, nil
}

// Generation returns the generation of projection, read consistently.
func (s *Store) Generation(ctx context.Context, projection string) (Generation, error) {
	gens, err := s.readGenerations(ctx)
	if err != nil {
		return Generation{}, err
	}
	s.gens.put(gens)
	if g, ok := gens[projection]; ok {
		return g, nil
	}
	return Generation{Projection: projection, Active: 1, Latest: 1}, nil
}

func (s *Store) readGenerations(ctx context.Context) (map[string]Generation, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(pkGenerations, skGenerations),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get generations: %w", err)
	}
	gens := map[string]Generation{}
	for name := range out.Item {
		field, p, ok := strings.Cut(name, "#")
		if !ok || field+"#" != genActive {
			continue
		}
		g := Generation{Projection: p, Active: 1, Latest: 1}
		var errs [3]error
		g.Active, errs[0] = attr.Int(out.Item, genActive+p)
		if _, ok := out.Item[genBuilding+p]; ok {
			g.Building, errs[1] = attr.Int(out.Item, genBuilding+p)
		}
		if _, ok := out.Item[genLatest+p]; ok {
			g.Latest, errs[2] = attr.Int(out.Item, genLatest+p)
		}
		g.StartedAt, _ = attr.Time(out.Item, genStartedAt+p)
		g.SwitchedAt, _ = attr.Time(out.Item, genSwitchedAt+p)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("generations of %s: %w", p, err)
		}
		gens[p] = g
	}
	return gens, nil
}

// BeginBuild allocates the next generation of projection as the one
// building, unless one is building already, and returns the projection's
// generations. Concurrent callers get the same building generation.
func (s *Store) BeginBuild(ctx context.Context, projection string, now time.Time) (Generation, error) {
	for range 5 {
		gens, err := s.readGenerations(ctx)
		if err != nil {
			return Generation{}, err
		}
		g, stored := gens[projection]
		if !stored {
			g = Generation{Projection: projection, Active: 1, Latest: 1}
		}
		if g.Building > 0 {
			return g, nil
		}
		next := max(g.Latest, g.Active) + 1
		names := map[string]string{
			"#a": genActive + projection, "#b": genBuilding + projection,
			"#l": genLatest + projection, "#s": genStartedAt + projection,
		}
		values := map[string]types.AttributeValue{":next": num(next), ":zero": num(0), ":one": num(1), ":now": str(stamp(now))}
		cond := "(attribute_not_exists(#b) OR #b = :zero) AND attribute_not_exists(#l)"
		if stored {
			cond = "(attribute_not_exists(#b) OR #b = :zero) AND #l = :latest"
			values[":latest"] = num(g.Latest)
		}
		_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       key(pkGenerations, skGenerations),
			UpdateExpression:          aws.String("SET #a = if_not_exists(#a, :one), #b = :next, #l = :next, #s = :now"),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		})
		if conditionFailed(err) {
			continue // another caller began one: read it
		}
		if err != nil {
			return Generation{}, fmt.Errorf("begin building %s: %w", projection, err)
		}
		s.gens.invalidate()
		return s.Generation(ctx, projection)
	}
	return Generation{}, fmt.Errorf("begin building %s: %w", projection, ErrConflict)
}

// ActivateBuild makes generation gen, which must be the one building, the
// active generation of projection: readers switch to it within their cache
// TTL. The previous generation's rows are left for Prune.
func (s *Store) ActivateBuild(ctx context.Context, projection string, gen int64, now time.Time) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 key(pkGenerations, skGenerations),
		UpdateExpression:    aws.String("SET #a = :g, #b = :zero, #w = :now"),
		ConditionExpression: aws.String("#b = :g"),
		ExpressionAttributeNames: map[string]string{
			"#a": genActive + projection, "#b": genBuilding + projection, "#w": genSwitchedAt + projection,
		},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":g": num(gen), ":zero": num(0), ":now": str(stamp(now))},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	s.gens.invalidate()
	// A retry after a lost reply finds gen active and nothing building:
	// the switch applied.
	if conditionFailed(err) && oldNum(err, genActive+projection) == gen && oldNum(err, genBuilding+projection) == 0 {
		return nil
	}
	if conditionFailed(err) {
		return fmt.Errorf("activate generation %d of %s: %w", gen, projection, ErrNoBuild)
	}
	if err != nil {
		return fmt.Errorf("activate generation %d of %s: %w", gen, projection, err)
	}
	return nil
}

// AbandonBuild stops building generation gen of projection: the live
// projector stops writing it, and the next BeginBuild allocates a new one.
// Its rows are left for Prune.
func (s *Store) AbandonBuild(ctx context.Context, projection string, gen int64) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key(pkGenerations, skGenerations),
		UpdateExpression:                    aws.String("SET #b = :zero"),
		ConditionExpression:                 aws.String("#b = :g"),
		ExpressionAttributeNames:            map[string]string{"#b": genBuilding + projection},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":g": num(gen), ":zero": num(0)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	s.gens.invalidate()
	// A retry after a lost reply finds nothing building, and gen not
	// active: the abandon applied.
	if conditionFailed(err) && oldNum(err, genBuilding+projection) == 0 && oldNum(err, genActive+projection) != gen {
		return nil
	}
	if conditionFailed(err) {
		return fmt.Errorf("abandon generation %d of %s: %w", gen, projection, ErrNoBuild)
	}
	if err != nil {
		return fmt.Errorf("abandon generation %d of %s: %w", gen, projection, err)
	}
	return nil
}

// oldNum is the number at name in the old item of a failed condition (asked
// for with ReturnValuesOnConditionCheckFailure); -1 when there is none
// (our own writes always leave both numbers there).
func oldNum(err error, name string) int64 {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return -1
	}
	n, aerr := attr.Int(ccf.Item, name)
	if aerr != nil {
		return -1
	}
	return n
}
