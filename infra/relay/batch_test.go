package relay

import (
	"strings"
	"testing"
)

func TestBatchLen(t *testing.T) {
	t.Parallel()
	msgs := func(sizes ...int) []message {
		out := make([]message, len(sizes))
		for i, n := range sizes {
			out[i] = message{index: i, body: strings.Repeat("x", n)}
		}
		return out
	}
	const k = 1024
	tests := []struct {
		name  string
		sizes []int
		want  int
	}{
		{"one", []int{10}, 1},
		{"ten of twelve", []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 10},
		{"bytes cut before ten", []int{100 * k, 100 * k, 100 * k, 1}, 2},
		{"exactly the limit", []int{128 * k, 128 * k, 1}, 2},
		{"an oversized body goes alone", []int{300 * k, 1}, 1},
	}
	for _, tt := range tests {
		if got := batchLen(msgs(tt.sizes...)); got != tt.want {
			t.Errorf("%s: batchLen = %d, want %d", tt.name, got, tt.want)
		}
	}
}
