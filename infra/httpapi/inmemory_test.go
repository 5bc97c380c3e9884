package httpapi_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/teamapi"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// memoryService is the User service held entirely in memory, for the
// tests that must run without emulators and fast: the fuzz targets, the
// hostile-input table and the authorization matrix. The event store is the
// in-memory es.Store (which passes the same conformance suite as the
// DynamoDB one); the read model is syncReadModel below.
type memoryService struct {
	store *syncReadModel
	svc   *es.Service[user.State, user.Command]
	teams *team.Service
	cmds  *httpapi.Commands
	qs    *httpapi.Queries
}

func newMemoryService(tb testing.TB) *memoryService {
	tb.Helper()
	mem := memory.New()
	rm := newSyncReadModel(mem)
	svc := user.NewService(rm, es.Options{SnapshotEvery: 3, MaxAttempts: 8})
	teams := team.NewService(rm, es.Options{SnapshotEvery: 3, MaxAttempts: 8})
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	// Both functions serve the Team API beside the User API, as lambdafn
	// wires them.
	tq, err := teamapi.NewQueries(teamapi.QueriesDeps{Teams: teams, Users: svc, Events: rm, Guards: mem, Views: rm})
	if err != nil {
		tb.Fatal(err)
	}
	qs, err := httpapi.NewQueries(httpapi.QueriesDeps{
		Users: svc, Events: rm, ReadModel: rm, Logger: logger,
		Health: func(context.Context) error { return nil },
	}, httpapi.WithAPI(tq.API()))
	if err != nil {
		tb.Fatal(err)
	}
	tc := teamapi.NewCommands(teamapi.CommandsDeps{Teams: teams, Users: svc, Guards: mem, Logger: logger})
	return &memoryService{store: rm, svc: svc, teams: teams, cmds: httpapi.NewCommands(svc, logger, httpapi.WithAPI(tc.API())), qs: qs}
}

// syncReadModel is a fuzz- and test-only stand-in for the projector and the
// read-model table: an es.Store that folds every event it appends into the
// views, email lookups and actor activity at once, so the query routes see
// their own writes. It proves nothing about the real projector (the
// reliability suite in infra/projector does that); it lets the handlers be
// driven through every route without emulators.
type syncReadModel struct {
	es.Store
	registry *es.Registry

	mu       sync.Mutex
	teams    map[string]team.View // the read model of teams
	views    map[string]user.View
	emails   map[string]string      // live address → user id
	activity map[string][]es.Record // by actor, oldest first
	applied  int64
	last     es.Record
}

var (
	_ es.Store          = (*syncReadModel)(nil)
	_ httpapi.ReadModel = (*syncReadModel)(nil)
)

func newSyncReadModel(store es.Store) *syncReadModel {
	reg := user.NewRegistry()
	team.Register(reg)
	return &syncReadModel{Store: store, registry: reg, teams: map[string]team.View{},
		views: map[string]user.View{}, emails: map[string]string{}, activity: map[string][]es.Record{}}
}

// Append appends to the store, then applies what was appended.
func (m *syncReadModel) Append(ctx context.Context, req es.AppendRequest) error {
	if err := m.Store.Append(ctx, req); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range req.Records {
		if r.Event == nil {
			ev, err := m.registry.Decode(r)
			if err != nil {
				panic("sync read model: " + err.Error()) // the service appended it: a test bug
			}
			r.Event = ev
		}
		if r.AggregateType == team.AggregateType {
			m.teams[r.AggregateID] = team.ApplyView(m.teams[r.AggregateID], r)
			m.applied++
			m.last = r
			continue
		}
		before := m.views[r.AggregateID]
		after := user.ApplyView(before, r)
		m.views[r.AggregateID] = after
		if held(before) != "" && m.emails[held(before)] == r.AggregateID {
			delete(m.emails, held(before))
		}
		if held(after) != "" {
			m.emails[held(after)] = r.AggregateID
		}
		if r.Metadata.Actor != "" {
			m.activity[r.Metadata.Actor] = append(m.activity[r.Metadata.Actor], r)
		}
		m.applied++
		m.last = r
	}
	return nil
}

// Team is the read model's view of team id (teamapi.Views).
func (m *syncReadModel) Team(_ context.Context, id string) (team.View, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.teams[id]
	return v, ok, nil
}

// UserTeams lists the teams of user id (teamapi.Views).
func (m *syncReadModel) UserTeams(_ context.Context, id string) ([]team.Membership, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []team.Membership
	for tid, v := range m.teams {
		if ms, ok := team.Memberships(tid, v.State())[id]; ok {
			out = append(out, ms)
		}
	}
	return out, nil
}

func held(v user.View) string {
	if v.Status == "" || v.Status == user.StatusDeleted {
		return ""
	}
	return v.Email
}

func (m *syncReadModel) UserView(_ context.Context, id string) (user.View, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.views[id]
	return v, ok, nil
}

func (m *syncReadModel) UserIDByEmail(_ context.Context, email string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.emails[strings.ToLower(email)]
	return id, ok, nil
}

// ActorActivity pages newest first; a cursor is the actor and the number of
// events already handed out.
func (m *syncReadModel) ActorActivity(_ context.Context, sub string, limit int, cursor string) ([]es.Record, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit <= 0 {
		limit = userviews.DefaultLimit
	}
	limit = min(limit, userviews.MaxLimit)
	skip := 0
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		actor, n, ok := strings.Cut(string(b), "\x00")
		skip, _ = strconv.Atoi(n)
		if err != nil || !ok || actor != sub || skip <= 0 {
			return nil, "", readmodel.ErrBadCursor
		}
	}
	all := slices.Clone(m.activity[sub])
	slices.Reverse(all)
	if skip > len(all) {
		return nil, "", readmodel.ErrBadCursor
	}
	page := all[skip:min(skip+limit, len(all))]
	next := ""
	if skip+len(page) < len(all) {
		next = base64.RawURLEncoding.EncodeToString([]byte(sub + "\x00" + strconv.Itoa(skip+len(page))))
	}
	return page, next, nil
}

func (m *syncReadModel) AppliedVersions(_ context.Context, id string) (map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.views[id]
	if !ok {
		return map[string]int64{}, nil
	}
	return map[string]int64{userviews.ProjectionUserView: v.Version, userviews.ProjectionActorActivity: v.Version}, nil
}

func (m *syncReadModel) CheckpointsOf(_ context.Context, names []string) ([]readmodel.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []readmodel.Checkpoint
	for _, name := range names {
		c := readmodel.Checkpoint{Projection: name, Processed: m.applied, LastEventID: m.last.ID, LastEventAt: m.last.OccurredAt}
		if m.applied > 0 {
			c.ProcessedAt = time.Now()
		}
		out = append(out, c)
	}
	return out, nil
}

// ListUsers pages the live users newest first (createdAt, then id); a
// cursor is the status and the number of users already handed out.
func (m *syncReadModel) ListUsers(_ context.Context, status user.Status, limit int, cursor string) (userviews.UserPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit <= 0 {
		limit = userviews.DefaultLimit
	}
	limit = min(limit, userviews.MaxLimit)
	skip := 0
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		st, n, ok := strings.Cut(string(b), "\x00")
		skip, _ = strconv.Atoi(n)
		if err != nil || !ok || st != string(status) || skip <= 0 {
			return userviews.UserPage{}, readmodel.ErrBadCursor
		}
	}
	var all []user.View
	for _, v := range m.views {
		if (v.Status == user.StatusActive || v.Status == user.StatusSuspended) && (status == "" || v.Status == status) {
			all = append(all, v)
		}
	}
	slices.SortFunc(all, func(a, b user.View) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if skip > len(all) {
		return userviews.UserPage{}, readmodel.ErrBadCursor
	}
	page := userviews.UserPage{Users: all[skip:min(skip+limit, len(all))]}
	if skip+len(page.Users) < len(all) {
		page.Next = base64.RawURLEncoding.EncodeToString([]byte(string(status) + "\x00" + strconv.Itoa(skip+len(page.Users))))
	}
	return page, nil
}
