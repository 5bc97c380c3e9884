package runner

import (
	"context"
	"hash/fnv"
	"slices"
	"sync"

	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// ParallelizationFactor. Lambda reads a shard with up to ten batches in
// flight at once; it keeps the order of the records of one item, and the
// runner, like Lambda's own partitioning, goes further and keeps the order
// of one partition key: each record goes to a lane chosen by a hash of its
// partition key, a lane's batches run one after the other, and the lanes
// run side by side. For the events table a partition key is an aggregate,
// so every aggregate's events reach the function in version order. (AWS
// promises order per item only; docs/scaling.md says why the read side
// does not depend on more.)
//
// The shard's position moves only once every lane has finished with the
// records read together, so a restart resumes at a point before which
// everything was handed on.

// parallelization is the mapping's factor, at least 1.
func (p *streamPoller) parallelization() int {
	return max(p.m.event.ParallelizationFactor, 1)
}

// processLanes hands recs (read from the shard together, in its order) to
// the function: split into lanes by partition key, each lane in batches of
// at most BatchSize, the lanes at once. It reports whether every lane
// finished (see process).
func (p *streamPoller) processLanes(ctx context.Context, shard string, recs []streamtypes.Record) bool {
	lanes := splitLanes(recs, p.parallelization(), p.hashKey)
	if len(lanes) == 1 {
		return p.processInBatches(ctx, shard, lanes[0])
	}
	done := make([]bool, len(lanes))
	var wg sync.WaitGroup
	for i, lane := range lanes {
		wg.Go(func() { done[i] = p.processInBatches(ctx, shard, lane) })
	}
	wg.Wait()
	return !slices.Contains(done, false)
}

// processInBatches processes recs in batches of the mapping's BatchSize,
// one after the other, stopping at the first that did not finish.
func (p *streamPoller) processInBatches(ctx context.Context, shard string, recs []streamtypes.Record) bool {
	for batch := range slices.Chunk(recs, max(p.m.event.BatchSize, 1)) {
		if !p.process(ctx, shard, batch) {
			return false
		}
	}
	return true
}

// splitLanes distributes recs over at most n lanes by a hash of the value
// of their attribute key (the table's partition key), keeping their order
// within each lane; lanes left empty are dropped.
func splitLanes(recs []streamtypes.Record, n int, key string) [][]streamtypes.Record {
	if n <= 1 {
		return [][]streamtypes.Record{recs}
	}
	lanes := make([][]streamtypes.Record, n)
	for _, rec := range recs {
		i := int(partitionHash(rec, key) % uint32(n))
		lanes[i] = append(lanes[i], rec)
	}
	return slices.DeleteFunc(lanes, func(l []streamtypes.Record) bool { return len(l) == 0 })
}

// partitionHash hashes the value of a record's partition key.
func partitionHash(rec streamtypes.Record, key string) uint32 {
	h := fnv.New32a()
	if rec.Dynamodb != nil {
		switch v := rec.Dynamodb.Keys[key].(type) {
		case *streamtypes.AttributeValueMemberS:
			h.Write([]byte(v.Value))
		case *streamtypes.AttributeValueMemberN:
			h.Write([]byte(v.Value))
		case *streamtypes.AttributeValueMemberB:
			h.Write(v.Value)
		}
	}
	return h.Sum32()
}
