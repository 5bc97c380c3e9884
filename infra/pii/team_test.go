package pii_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
)

// TestTeamStreamsGetNoKey: a team declares no personal field, in its
// events or its state, so a team stream appended through a sealing store,
// its snapshots included, makes no KMS call and writes no key item, and
// its snapshot's name stays in clear. The cipher used to seal the "name"
// of every stream's snapshot, as if every state were a user's.
func TestTeamStreamsGetNoKey(t *testing.T) {
	f := newFixture(t, 2)
	ctx := t.Context()
	teams := team.NewService(f.store, es.Options{SnapshotEvery: 2})
	id, owner, member := uuid.NewString(), uuid.NewString(), uuid.NewString()
	md := es.ExecOptions{Metadata: es.Metadata{Actor: "admin"}}
	genBefore, decBefore := f.keys.Calls.Snapshot()
	for _, cmd := range []team.Command{
		team.Create{Name: "Platform", Owner: owner, OwnerActive: true},
		team.Rename{Name: "Infra"}, // v2: a snapshot
		team.SetMember{UserID: member, Role: team.RoleMember, UserActive: true},
		team.Rename{Name: "Core"}, // v4: another
	} {
		if _, err := teams.Execute(ctx, id, cmd, md); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	// A cold load, from the latest snapshot.
	agg, err := team.NewService(f.store, es.Options{SnapshotEvery: 2}).Load(ctx, id)
	if err != nil || agg.Version != 4 || agg.State.Name != "Core" || len(agg.State.Members) != 2 {
		t.Fatalf("load: v%d %+v %v", agg.Version, agg.State, err)
	}
	if gen, dec := f.keys.Calls.Snapshot(); gen != genBefore || dec != decBefore {
		t.Errorf("KMS calls for a team: %d GenerateDataKey, %d Decrypt", gen-genBefore, dec-decBefore)
	}
	out, err := f.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.keys.Config().Table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: id}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item != nil {
		t.Errorf("a team has a key item: %v", dump(out.Item))
	}
	raw := f.raw(t)
	if strings.Contains(raw, "pii1:") {
		t.Errorf("a team's items hold sealed values:\n%s", raw)
	}
	if !strings.Contains(raw, `"name":"Infra"`) {
		t.Errorf("the v2 snapshot of the team is not in the stream, in clear:\n%s", raw)
	}

	// A user's snapshot is sealed as before.
	uid := uuid.NewString()
	for _, cmd := range []user.Command{user.Create{Name: "Ada", Email: "ada-" + uid[:8] + "@example.com"}, user.Rename{Name: "Ada L"}} {
		if err := f.exec(t, uid, cmd); err != nil {
			t.Fatal(err)
		}
	}
	if raw := f.raw(t); strings.Contains(raw, "Ada L") {
		t.Errorf("a user's snapshot holds its name in clear:\n%s", raw)
	}
}

// TestGuardOwnerHashed: the store finds the user holding an identity by
// its sub when it hashes guard keys, as the Team API does for a caller.
func TestGuardOwnerHashed(t *testing.T) {
	f := newFixture(t, 0)
	ctx := t.Context()
	if _, ok, err := f.store.GuardOwner(ctx, user.SubKey("nobody")); err != nil || ok {
		t.Fatalf("before any guard secret: %v %v", ok, err)
	}
	id, sub := uuid.NewString(), "ada-"+uuid.NewString()[:8]
	if err := f.exec(t, id, user.Create{Name: "Ada", Email: sub + "@example.com", Sub: sub}); err != nil {
		t.Fatal(err)
	}
	owner, ok, err := f.store.GuardOwner(ctx, user.SubKey(sub))
	if err != nil || !ok || owner != id {
		t.Fatalf("GuardOwner = %q %v %v, want %s", owner, ok, err, id)
	}
	if _, ok, err := f.store.GuardOwner(ctx, user.SubKey("someone-else")); err != nil || ok {
		t.Fatalf("another sub: %v %v", ok, err)
	}
}
