package user_test

import (
	"testing"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
	"github.com/chronicle-go/chronicle/domain/user/usertest"
)

func TestScenariosInMemory(t *testing.T) {
	usertest.Run(t, func(*testing.T) es.Store { return memory.New() })
}
