package readmodel_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
)

// TestLostReplies runs every conditional write of the table's core through a
// client whose writes apply and whose replies are lost until the SDK's
// last attempt (faults.LostReplies), so that each write is sent again after
// it applied. Each must answer what one successful call answers and leave
// what one call leaves.
func TestLostReplies(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	in := faults.New(7)
	table := readmodeltest.Table(t)
	s := readmodel.New(dynamodb.NewFromConfig(faults.WithLostReplies(awstest.Config(t), in, 1)), table)

	t.Run("checkpoint", func(t *testing.T) {
		for i := range 3 {
			c := readmodel.Checkpoint{Projection: projA, LastEventID: "e", LastEventAt: t0,
				ProcessedAt: t0.Add(time.Duration(i) * time.Minute), Processed: 2}
			if err := s.AdvanceCheckpoint(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		cps, err := s.CheckpointsOf(ctx, projections)
		if err != nil || len(cps) != 1 || cps[0].Processed != 6 {
			t.Errorf("checkpoints: %+v, %v; want 6 processed", cps, err)
		}
	})

	t.Run("generations", func(t *testing.T) {
		p := projB
		g, err := s.BeginBuild(ctx, p, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ActivateBuild(ctx, p, g.Building, t0.Add(time.Minute)); err != nil {
			t.Errorf("activate: %v", err)
		}
		g, err = s.BeginBuild(ctx, p, t0.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AbandonBuild(ctx, p, g.Building); err != nil {
			t.Errorf("abandon: %v", err)
		}
		got, err := s.Generation(ctx, p)
		if err != nil || got.Active != 2 || got.Building != 0 || got.Latest != 3 {
			t.Errorf("generation: %+v, %v; want active 2, building 0, latest 3", got, err)
		}
	})

	t.Logf("faults: %s", in)
	if in.Total("lostreply.") == 0 {
		t.Error("no reply was lost")
	}
}
