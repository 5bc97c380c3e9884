package memory_test

import (
	"testing"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/estest"
	"github.com/chronicle-go/chronicle/domain/es/memory"
)

func TestConformance(t *testing.T) {
	estest.Run(t, func(*testing.T) es.Store { return memory.New() })
}
