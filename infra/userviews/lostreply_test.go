package userviews_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// TestLostReplies runs every conditional write of the user rows through a
// client whose writes apply and whose replies are lost until the SDK's
// last attempt (faults.LostReplies), so that each write is sent again after
// it applied. Each must answer what one successful call answers and leave
// what one call leaves.
func TestLostReplies(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	in := faults.New(7)
	table := readmodeltest.Table(t)
	s := userviews.New(readmodel.New(dynamodb.NewFromConfig(faults.WithLostReplies(awstest.Config(t), in, 1)), table))

	t.Run("user view and activity", func(t *testing.T) {
		id := uuid.NewString()
		recs := []es.Event{
			user.Created{Name: "Ada", Email: "ada-" + id + "@example.com", Sub: "sub-" + id},
			user.Renamed{Name: "Ada L."},
		}
		var want user.View
		for i, e := range recs {
			actor := "sub-" + id
			if i == 1 {
				actor = "" // an event without an actor: the activity's PutItem
			}
			rec := record(t, id, int64(i+1), e, t0.Add(time.Duration(i)*time.Second), actor)
			before, _, err := s.UserViewForUpdate(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			after := user.ApplyView(before, rec)
			want = after
			if err := s.SaveUserView(ctx, before, after, rec); err != nil {
				t.Errorf("save view v%d: %v", rec.Version, err)
			}
			if err := s.SaveActivity(ctx, rec); err != nil {
				t.Errorf("save activity v%d: %v", rec.Version, err)
			}
		}
		got, ok, err := s.UserView(ctx, id)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("view: %+v, %v, %v; want %+v", got, ok, err, want)
		}
		acts, _, err := s.ActorActivity(ctx, "sub-"+id, 10, "")
		if err != nil || len(acts) != 1 {
			t.Errorf("activity: %d rows, %v; want 1", len(acts), err)
		}
	})

	t.Logf("faults: %s", in)
	if in.Total("lostreply.") == 0 {
		t.Error("no reply was lost")
	}
}
