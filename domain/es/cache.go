package es

import (
	"container/list"
	"sync"
)

// stateCache is a bounded, least-recently-used cache of folded aggregates,
// keyed by aggregate id, each with the version it was folded to. It lets a
// warm command decide without reading the stream: the append is conditional
// on that version, so a stale entry (another container wrote since) costs a
// conflict and a catch-up, never a wrong answer.
//
// It holds only states that were true at some point: loaded from the store,
// or the result of an append the store confirmed. Versions only grow, so an
// entry is never ahead of the stream, only behind it. It is safe for
// concurrent use.
type stateCache[S any] struct {
	mu    sync.Mutex
	size  int
	order *list.List // front: most recently used; values are *Aggregate[S]
	byID  map[string]*list.Element
}

func newStateCache[S any](size int) *stateCache[S] {
	if size <= 0 {
		return nil
	}
	return &stateCache[S]{size: size, order: list.New(), byID: make(map[string]*list.Element, size)}
}

// get returns the cached aggregate id, if any. A nil cache holds nothing.
func (c *stateCache[S]) get(id string) (Aggregate[S], bool) {
	if c == nil {
		return Aggregate[S]{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok {
		return Aggregate[S]{}, false
	}
	c.order.MoveToFront(e)
	return *e.Value.(*Aggregate[S]), true
}

// put remembers agg unless the cache already holds a later version of it:
// concurrent commands of one container may finish out of order.
func (c *stateCache[S]) put(agg Aggregate[S]) {
	if c == nil || agg.ID == "" || agg.Version <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[agg.ID]; ok {
		if cur := e.Value.(*Aggregate[S]); cur.Version < agg.Version {
			*cur = agg
		}
		c.order.MoveToFront(e)
		return
	}
	c.byID[agg.ID] = c.order.PushFront(&agg)
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byID, last.Value.(*Aggregate[S]).ID)
	}
}

// len is the number of entries, for tests.
func (c *stateCache[S]) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
