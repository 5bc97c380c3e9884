package apigw

import (
	"math/rand/v2"
	"testing"
)

// TestIdempotencyScopeIsInjective: distinct (sub, key) pairs never share a
// record key, separators and digits in the sub included.
func TestIdempotencyScopeIsInjective(t *testing.T) {
	parts := []string{"", "a", "#", "b#c", "1", "1:", ":", "12:a#", "a#b", "c", "#c"}
	seen := map[string][2]string{}
	add := func(sub, key string) {
		k := IdempotencyScope(sub, key)
		if prev, ok := seen[k]; ok && prev != [2]string{sub, key} {
			t.Fatalf("(%q, %q) and (%q, %q) share the record key %q", prev[0], prev[1], sub, key, k)
		}
		seen[k] = [2]string{sub, key}
	}
	for _, a := range parts {
		for _, b := range parts {
			for _, c := range parts {
				add(a+b, c)
				add(a, b+c)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	runes := []rune("ab1:#")
	word := func() string {
		w := make([]rune, r.IntN(6))
		for i := range w {
			w[i] = runes[r.IntN(len(runes))]
		}
		return string(w)
	}
	for range 20000 {
		add(word(), word())
	}
}
