// Package faults injects failures into the relay's and the projector's
// dependencies, for tests only: wrappers around the DynamoDB client (event
// store and read model) and the SQS sender that fail a fraction of calls
// with the errors AWS answers (throttling, server errors, lost answers,
// per-entry refusals), and drivers that stand in for Lambda's event source
// mappings (stream → relay, queue → projector) while duplicating,
// reordering and holding back deliveries and crashing handlers half-way
// through a batch. SerialSQS keeps moto's unlocked queues out of the
// results.
//
// Nothing in functions/ or cmd/ may import it: make lint checks that.
// Every decision comes from one seeded source, so a failing run can be
// repeated with its seed (the scenarios log it), although the emulators'
// timing still varies.
package faults

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
)

// Injector decides, at random from its seed, when a fault strikes, and
// counts the faults it injected by kind. It is safe for concurrent use.
type Injector struct {
	mu     sync.Mutex
	rng    *rand.Rand
	counts map[string]int
}

// New returns an injector seeded with seed.
func New(seed uint64) *Injector {
	return &Injector{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), counts: map[string]int{}}
}

// Strike reports, with probability p, that a fault of kind strikes now,
// and counts it.
func (in *Injector) Strike(kind string, p float64) bool {
	if p <= 0 {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rng.Float64() >= p {
		return false
	}
	in.counts[kind]++
	return true
}

// IntN returns a number in [0, n), for choices that are not faults.
func (in *Injector) IntN(n int) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.IntN(n)
}

// Shuffle shuffles n items with swap.
func (in *Injector) Shuffle(n int, swap func(i, j int)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rng.Shuffle(n, swap)
}

// Count counts an event of kind that was not decided by Strike.
func (in *Injector) Count(kind string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.counts[kind]++
}

// Counts returns how many faults of each kind were injected.
func (in *Injector) Counts() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return maps.Clone(in.counts)
}

// Total is the number of faults of kinds starting with prefix.
func (in *Injector) Total(prefix string) int {
	n := 0
	for k, v := range in.Counts() {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// String lists the counts, sorted by kind, for a test log.
func (in *Injector) String() string {
	counts := in.Counts()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, counts[k])
	}
	return b.String()
}
