package rie

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Pool is the execution environments of one function: up to Size
// instances, started at the first invocations that find none idle, as
// Lambda scales out; each serves one invocation at a time, as the
// emulator (and a Lambda sandbox) does. An instance whose invocation timed
// out or whose emulator failed is stopped, as Lambda discards such a
// sandbox; the next invocation starts a fresh one (a cold start again).
type Pool struct {
	spec Spec
	size int

	mu      sync.Mutex
	idle    []*Instance
	running int // instances started and not stopped
	closed  bool
	freed   chan struct{} // a token per instance given back or stopped
	inits   []time.Duration
	// prepare, when set, returns the bootstrap's command (building it) at
	// the first start; spec.Command is then set.
	prepare  func(context.Context) ([]string, error)
	prepared sync.Mutex
}

// NewPool makes the pool of spec's function; it starts nothing yet.
func NewPool(spec Spec, size int) *Pool {
	if size < 1 {
		size = 1
	}
	return &Pool{spec: spec, size: size, freed: make(chan struct{}, size)}
}

// Invoke runs one invocation (see Instance.Invoke) on an idle instance, a new one, or the first
// to be given back.
func (p *Pool) Invoke(ctx context.Context, requestID string, payload []byte) ([]byte, error) {
	in, err := p.take(ctx)
	if err != nil {
		return nil, err
	}
	cold := in.InitDuration() == 0
	out, err := in.Invoke(ctx, requestID, payload)
	var fe *FunctionError
	healthy := err == nil || errors.As(err, &fe)
	if cold && in.InitDuration() > 0 {
		p.mu.Lock()
		p.inits = append(p.inits, in.InitDuration())
		p.mu.Unlock()
	}
	p.give(in, healthy)
	return out, err
}

func (p *Pool) take(ctx context.Context) (*Instance, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errors.New("rie: pool closed")
		}
		if n := len(p.idle); n > 0 {
			in := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			return in, nil
		}
		if p.running < p.size {
			p.running++
			p.mu.Unlock()
			spec, err := p.prepareSpec(ctx)
			var in *Instance
			if err == nil {
				in, err = Start(ctx, spec)
			}
			if err != nil {
				p.mu.Lock()
				p.running--
				p.mu.Unlock()
				p.signal()
				return nil, fmt.Errorf("start an execution environment: %w", err)
			}
			return in, nil
		}
		p.mu.Unlock()
		select {
		case <-p.freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// prepareSpec is the spec, its command prepared at the first start.
func (p *Pool) prepareSpec(ctx context.Context) (Spec, error) {
	p.prepared.Lock()
	defer p.prepared.Unlock()
	if len(p.spec.Command) == 0 && p.prepare != nil {
		cmd, err := p.prepare(ctx)
		if err != nil {
			return Spec{}, err
		}
		p.spec.Command = cmd
	}
	return p.spec, nil
}

func (p *Pool) give(in *Instance, healthy bool) {
	p.mu.Lock()
	if healthy && !p.closed {
		p.idle = append(p.idle, in)
		p.mu.Unlock()
	} else {
		p.running--
		p.mu.Unlock()
		in.Close()
	}
	p.signal()
}

// signal wakes one waiter, if any is waiting.
func (p *Pool) signal() {
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// InitDurations are the cold inits of the instances started so far.
func (p *Pool) InitDurations() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.inits...)
}

// Close stops the idle instances; those busy stop when given back.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.running -= len(idle)
	p.mu.Unlock()
	var errs []error
	for _, in := range idle {
		errs = append(errs, in.Close())
	}
	return errors.Join(errs...)
}
