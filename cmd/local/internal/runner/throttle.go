package runner

import (
	"sync"
	"time"

	"github.com/chronicle-go/chronicle/infra/template"
)

// replyThrottled is the gateway response of a request over the stage's
// throttle.
const replyThrottled = "THROTTLED"

func init() {
	builtinReplies[replyThrottled] = builtinReply{429, "TooManyRequestsException"}
}

// throttle is API Gateway's stage throttle as the template's MethodSettings
// set it for every method ("/*", "*"): a token bucket per method (route),
// holding up to BurstLimit requests and refilled at RateLimit per second.
// A request finding the bucket empty is answered 429 (the THROTTLED
// gateway response) without reaching the authorizer or the function.
type throttle struct {
	rate  float64 // tokens per second; 0: no throttle
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket // by route key
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newThrottle(t template.Throttle, now func() time.Time) *throttle {
	return &throttle{rate: t.RateLimit, burst: float64(max(t.BurstLimit, 1)), now: now, buckets: map[string]*bucket{}}
}

// allow takes a token from the bucket of route key, reporting whether
// there was one.
func (t *throttle) allow(key string) bool {
	if t == nil || t.rate <= 0 {
		return true
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.buckets[key]
	if !ok {
		b = &bucket{tokens: t.burst, at: now}
		t.buckets[key] = b
	}
	b.tokens = min(t.burst, b.tokens+now.Sub(b.at).Seconds()*t.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
