package pii_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/faults"
)

// TestMigrateStackWrittenBeforeEncryption: users written by a store
// without the cipher (plaintext events and stream snapshots, plain guard
// keys) are sealed and their guards hashed by dynamo.Migrate; afterwards
// nothing plain is stored, they load through the sealing store, their
// addresses stay unique and can be released, a rerun changes nothing, and
// a forget leaves nothing readable.
func TestMigrateStackWrittenBeforeEncryption(t *testing.T) {
	f := newFixture(t, 2) // stream snapshots every 2 events: they hold plain state
	ctx := t.Context()
	plainStore := dynamo.New(f.ddb, f.tables)
	plain := es.NewService(user.Decider(), user.NewRegistry(), plainStore, es.Options{SnapshotEvery: 2})
	run := func(id string, cmd user.Command) {
		t.Helper()
		_, err := plain.Execute(ctx, id, cmd, es.ExecOptions{Metadata: es.Metadata{Actor: "admin"}})
		must(t, err)
	}
	ada, bob, cy, eve, gus := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	run(ada, user.Create{Name: "Ada Lovelace", Email: "ada@migrate.example"})
	run(ada, user.Rename{Name: "Ada King"})
	run(ada, user.ChangeEmail{Email: "ada.king@migrate.example"})
	run(bob, user.Create{Name: "Bob Babbage", Email: "bob@migrate.example"})
	run(cy, user.Create{Name: "Cy Forgotten", Email: "cy@migrate.example"})
	run(cy, user.Rename{Name: "Cy Gone"})
	run(eve, user.Create{Name: "Eve Early", Email: "eve@migrate.example"})
	run(gus, user.Create{Name: "Gus Gone", Email: "gus@migrate.example"})
	// Cy was forgotten before the migration (its key destroyed, its
	// plaintext still stored).
	run(cy, user.Forget{Reason: "art. 17"})
	must(t, f.keys.Forget(ctx, cy, cyTime(t, f, cy)))
	// After the upgrade, before the migration: a new user takes Eve's
	// address, since the hashed claim finds nothing. The migration must
	// report that conflict, not overwrite either claim.
	late := uuid.NewString()
	must(t, f.exec(t, late, user.Create{Name: "Late Comer", Email: "eve@migrate.example"}))
	// And Gus moves to a new address: his release looks for the hashed key
	// of the old one, so the plain claim stays behind, stale.
	must(t, f.exec(t, gus, user.ChangeEmail{Email: "gus2@migrate.example"}))
	holds := func(ctx context.Context, owner, key string) (bool, error) {
		agg, err := f.svc.Load(ctx, owner)
		return slices.Contains(user.Unique(agg.State), key), err
	}

	secrets := []string{"Ada Lovelace", "Ada King", "ada@migrate.example", "ada.king@migrate.example",
		"Bob Babbage", "bob@migrate.example", "gus@migrate.example", "Gus Gone", "Cy Forgotten", "Cy Gone", "cy@migrate.example", "Eve Early"}
	if found := leaks(rawTable(t, f, f.tables.Events), secrets...); len(found) == 0 {
		t.Fatal("the plain store wrote no plaintext: the test proves nothing")
	}

	first, err := dynamo.Migrate(ctx, f.ddb, f.tables, f.cipher, holds, 2, nil)
	must(t, err)
	t.Logf("first run: %+v", first)
	// Guards: ada.king, bob, eve are plain claims (Ada released her first
	// address, Cy's forget released his); eve's hashed key is Late's.
	if first.Guards.Done != 2 || first.Guards.Conflicts != 1 || first.Guards.Stale != 1 {
		t.Errorf("guards: %+v, want 2 moved, 1 conflict, 1 stale", first.Guards)
	}
	if first.Events.Done == 0 || first.Events.Skipped != 0 {
		t.Errorf("events: %+v", first.Events)
	}

	events := rawTable(t, f, f.tables.Events)
	if found := leaks(events, secrets...); len(found) > 0 {
		t.Fatalf("the events table holds %q after the migration", found)
	}
	if !strings.Contains(events, "snapState") || !strings.Contains(events, "pii1:") {
		t.Fatal("no stream snapshot or sealed value to look at: the test proves nothing")
	}
	guards := rawTable(t, f, f.tables.Guards)
	if found := leaks(guards, secrets[:len(secrets)-1]...); len(found) > 0 {
		t.Fatalf("the guards table holds %q after the migration", found)
	}
	if !strings.Contains(guards, "email#eve@migrate.example") {
		t.Fatal("the conflicting plain claim was not left for the operator")
	}

	// The users load through the sealing store, from scratch.
	fresh := es.NewService(user.Decider(), user.NewRegistry(), f.store, es.Options{SnapshotEvery: 2})
	agg, err := fresh.Load(ctx, ada)
	must(t, err)
	if agg.State.Name != "Ada King" || agg.State.Email != "ada.king@migrate.example" {
		t.Fatalf("Ada after the migration: %+v", agg.State)
	}
	recs, err := f.store.Load(ctx, ada, 1, 0)
	must(t, err)
	if !strings.Contains(string(recs[0].Data), "Ada Lovelace") || !strings.Contains(string(recs[2].Data), `"previous":"ada@migrate.example"`) {
		t.Fatalf("Ada's history reads %s, %s", recs[0].Data, recs[2].Data)
	}
	agg, err = fresh.Load(ctx, cy)
	must(t, err)
	if !agg.State.Forgotten || agg.State.Name != "" || agg.State.Email != "" {
		t.Fatalf("Cy after the migration: %+v", agg.State)
	}
	recs, err = f.store.Load(ctx, cy, 1, 0)
	must(t, err)
	for _, r := range recs {
		var data map[string]any
		must(t, json.Unmarshal(r.Data, &data))
		for _, field := range f.svc.Registry().PersonalFields(r.Type) {
			if v, ok := data[field]; ok && v != nil {
				t.Errorf("Cy's %s v%d: %s = %v", r.Type, r.Version, field, v)
			}
		}
	}

	// Uniqueness holds against the migrated claims; Ada can move, and the
	// address she leaves is free.
	other := uuid.NewString()
	for _, taken := range []string{"ada.king@migrate.example", "bob@migrate.example"} {
		if err := f.exec(t, other, user.Create{Name: "Other", Email: taken}); !errors.Is(err, es.ErrDuplicate) {
			t.Fatalf("claim the migrated %s: %v, want a duplicate", taken, err)
		}
	}
	must(t, f.exec(t, ada, user.ChangeEmail{Email: "ada3@migrate.example"}))
	must(t, f.exec(t, uuid.NewString(), user.Create{Name: "New Gus", Email: "gus@migrate.example"})) // the stale claim is gone
	must(t, f.exec(t, other, user.Create{Name: "Other", Email: "ada.king@migrate.example"}))

	// A rerun finds nothing left (the conflict stays for the operator).
	before := rawTable(t, f, f.tables.Events) + rawTable(t, f, f.tables.Guards)
	second, err := dynamo.Migrate(ctx, f.ddb, f.tables, f.cipher, holds, 3, nil)
	must(t, err)
	if second.Left() || second.Guards.Conflicts != 1 {
		t.Fatalf("second run: %+v, want nothing done and the conflict", second)
	}
	if after := rawTable(t, f, f.tables.Events) + rawTable(t, f, f.tables.Guards); after != before {
		t.Fatal("the rerun changed the tables")
	}

	// Forget after the migration: nothing of Ada readable anywhere.
	must(t, f.exec(t, ada, user.Forget{Reason: "art. 17"}))
	must(t, f.keys.Forget(ctx, ada, agg.UpdatedAt))
	recs, err = f.store.Load(ctx, ada, 1, 0)
	must(t, err)
	for _, r := range recs {
		if strings.Contains(string(r.Data), "Ada") || strings.Contains(string(r.Data), "ada") {
			t.Fatalf("forgotten Ada reads %s", r.Data)
		}
	}
	if found := leaks(f.raw(t), secrets[:len(secrets)-1]...); len(found) > 0 {
		t.Fatalf("the tables hold %q after the forget", found)
	}
}

// cyTime is when the last event of id happened.
func cyTime(t *testing.T, f *fixture, id string) (at time.Time) {
	t.Helper()
	recs, err := f.store.Load(t.Context(), id, 1, 0)
	must(t, err)
	return recs[len(recs)-1].OccurredAt
}

// rawTable is every item of table, as DynamoDB holds it.
func rawTable(t *testing.T, f *fixture, table string) string {
	t.Helper()
	var b strings.Builder
	p := dynamodb.NewScanPaginator(f.ddb, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		must(t, err)
		for _, item := range out.Items {
			js, _ := json.Marshal(dump(item))
			b.WriteString(string(js) + "\n")
		}
	}
	return b.String()
}

// TestMigrateLostReplies: every write of the migration is applied and its
// reply lost until the SDK's last attempt, so each write the SDK sends
// again finds its own effect; the run still ends with everything sealed
// and moved, the users readable, and a second run finds nothing left.
func TestMigrateLostReplies(t *testing.T) {
	f := newFixture(t, 2)
	ctx := t.Context()
	plain := es.NewService(user.Decider(), user.NewRegistry(), dynamo.New(f.ddb, f.tables), es.Options{SnapshotEvery: 2})
	ids := []string{uuid.NewString(), uuid.NewString()}
	for i, id := range ids {
		_, err := plain.Execute(ctx, id, user.Create{Name: fmt.Sprintf("Lost Reply %d", i), Email: fmt.Sprintf("lost%d@migrate.example", i)}, es.ExecOptions{})
		must(t, err)
		_, err = plain.Execute(ctx, id, user.Rename{Name: fmt.Sprintf("Lost Renamed %d", i)}, es.ExecOptions{})
		must(t, err)
	}
	lossy := dynamodb.NewFromConfig(faults.WithLostReplies(awstest.Config(t), faults.New(1), 1))
	first, err := dynamo.Migrate(ctx, lossy, f.tables, f.cipher, nil, 2, nil)
	must(t, err)
	t.Logf("first run, every reply lost: %+v", first)
	if first.Guards.Done != 2 || first.Events.Done != 4 || first.Events.Skipped != 0 {
		t.Errorf("first run counted %+v, want every write done once", first)
	}
	if found := leaks(rawTable(t, f, f.tables.Events)+rawTable(t, f, f.tables.Guards), "Lost Reply", "Lost Renamed", "@migrate.example"); len(found) > 0 {
		t.Fatalf("after a run with lost replies the tables hold %q", found)
	}
	for i, id := range ids {
		agg, err := f.svc.Load(ctx, id)
		must(t, err)
		if agg.State.Email != fmt.Sprintf("lost%d@migrate.example", i) || agg.State.Name != fmt.Sprintf("Lost Renamed %d", i) {
			t.Fatalf("user %d after the migration: %+v", i, agg.State)
		}
		if err := f.exec(t, uuid.NewString(), user.Create{Name: "Other", Email: agg.State.Email}); !errors.Is(err, es.ErrDuplicate) {
			t.Fatalf("claim a migrated address: %v, want a duplicate", err)
		}
	}
	second, err := dynamo.Migrate(ctx, f.ddb, f.tables, f.cipher, nil, 2, nil)
	must(t, err)
	if second.Left() || second.Guards.Conflicts != 0 {
		t.Fatalf("second run: %+v, want nothing left", second)
	}
}
