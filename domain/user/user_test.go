package user_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
)

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// given folds events into a state, as the kernel would.
func given(events ...es.Event) user.State {
	var s user.State
	for i, e := range events {
		s = user.Evolve(s, es.Record{Version: int64(i + 1), OccurredAt: t0, Event: e, Metadata: es.Metadata{Actor: "admin"}})
	}
	return s
}

func TestDecide(t *testing.T) {
	created := user.Created{Name: "Alice", Email: "alice@example.com"}
	tests := []struct {
		name    string
		given   []es.Event
		when    user.Command
		then    []es.Event
		wantErr error
		fields  []string
	}{
		{"create", nil, user.Create{Name: " Alice ", Email: "Alice@Example.COM"}, []es.Event{created}, nil, nil},
		{"create linked", nil, user.Create{Name: "Alice", Email: "alice@example.com", Sub: "auth0|1"},
			[]es.Event{user.Created{Name: "Alice", Email: "alice@example.com", Sub: "auth0|1"}}, nil, nil},
		{"create twice", []es.Event{created}, user.Create{Name: "A", Email: "a@example.com"}, nil, user.ErrAlreadyExists, nil},
		{"every bad field", nil, user.Create{Name: "  ", Email: "not-an-email"}, nil, nil, []string{"name", "email"}},
		{"name too long", nil, user.Create{Name: strings.Repeat("é", 201), Email: "a@example.com"}, nil, nil, []string{"name"}},
		{"name of 200", nil, user.Create{Name: strings.Repeat("é", 200), Email: "a@example.com"},
			[]es.Event{user.Created{Name: strings.Repeat("é", 200), Email: "a@example.com"}}, nil, nil},
		{"display name is not an addr-spec", nil, user.Create{Name: "A", Email: "Alice <a@example.com>"}, nil, nil, []string{"email"}},
		{"unicode look-alike", nil, user.Create{Name: "A", Email: "аlice@example.com"}, nil, nil, []string{"email"}},
		{"email over 254", nil, user.Create{Name: "A", Email: strings.Repeat("a", 60) + "@" + strings.Repeat("b", 190) + ".com"}, nil, nil, []string{"email"}},
		{"control characters", nil, user.Create{Name: "A\x00B", Email: "a@example.com"}, nil, nil, []string{"name"}},
		{"bidi override", nil, user.Create{Name: "Ada \u202eecalevoL", Email: "a@example.com"}, nil, nil, []string{"name"}},
		{"bidi isolate", nil, user.Create{Name: "Ada \u2067x\u2069", Email: "a@example.com"}, nil, nil, []string{"name"}},
		{"replacement character", nil, user.Create{Name: "Ad\uFFFDa", Email: "a@example.com"}, nil, nil, []string{"name"}},
		{"rename", []es.Event{created}, user.Rename{Name: "Alicia"}, []es.Event{user.Renamed{Name: "Alicia"}}, nil, nil},
		{"rename to the same name is a no-op", []es.Event{created}, user.Rename{Name: " Alice"}, nil, nil, nil},
		{"rename unknown", nil, user.Rename{Name: "Bob"}, nil, user.ErrNotFound, nil},
		{"change email", []es.Event{created}, user.ChangeEmail{Email: "ALICE@new.example"},
			[]es.Event{user.EmailChanged{Email: "alice@new.example", Previous: "alice@example.com"}}, nil, nil},
		{"same email is a no-op", []es.Event{created}, user.ChangeEmail{Email: "Alice@example.com"}, nil, nil, nil},
		{"suspend", []es.Event{created}, user.Suspend{Reason: "fraud"}, []es.Event{user.Suspended{Reason: "fraud"}}, nil, nil},
		{"suspend needs a reason", []es.Event{created}, user.Suspend{}, nil, nil, []string{"reason"}},
		{"suspend twice", []es.Event{created, user.Suspended{Reason: "x"}}, user.Suspend{Reason: "y"}, nil, user.ErrAlreadySuspended, nil},
		{"reactivate", []es.Event{created, user.Suspended{Reason: "x"}}, user.Reactivate{}, []es.Event{user.Reactivated{}}, nil, nil},
		{"reactivate active", []es.Event{created}, user.Reactivate{}, nil, user.ErrNotSuspended, nil},
		{"delete", []es.Event{created}, user.Delete{Reason: "gdpr"}, []es.Event{user.Deleted{Reason: "gdpr"}}, nil, nil},
		{"delete twice", []es.Event{created, user.Deleted{}}, user.Delete{}, nil, user.ErrDeleted, nil},
		{"a deleted user accepts nothing", []es.Event{created, user.Deleted{}}, user.Rename{Name: "Zombie"}, nil, user.ErrDeleted, nil},
		{"not even a no-op", []es.Event{created, user.Deleted{}}, user.Rename{Name: "Alice"}, nil, user.ErrDeleted, nil},
		{"forget a live user deletes it first", []es.Event{created}, user.Forget{Reason: "art. 17"},
			[]es.Event{user.Deleted{Reason: "art. 17"}, user.Forgotten{Reason: "art. 17"}}, nil, nil},
		{"forget a deleted user", []es.Event{created, user.Deleted{}}, user.Forget{Reason: "art. 17"},
			[]es.Event{user.Forgotten{Reason: "art. 17"}}, nil, nil},
		{"forget needs a reason", []es.Event{created}, user.Forget{Reason: " "}, nil, nil, []string{"reason"}},
		{"forget unknown", nil, user.Forget{Reason: "x"}, nil, user.ErrNotFound, nil},
		{"forget twice", []es.Event{created, user.Deleted{}, user.Forgotten{Reason: "x"}}, user.Forget{Reason: "y"}, nil, user.ErrForgotten, nil},
		{"a forgotten user accepts nothing", []es.Event{created, user.Deleted{}, user.Forgotten{Reason: "x"}}, user.Delete{}, nil, user.ErrForgotten, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := user.Decide(given(tc.given...), tc.when, t0)
			var verr *user.ValidationError
			switch {
			case tc.fields != nil:
				if !errors.As(err, &verr) {
					t.Fatalf("got %v, want a validation error on %v", err, tc.fields)
				}
				var fields []string
				for _, f := range verr.Fields {
					fields = append(fields, f.Field)
				}
				if strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
					t.Fatalf("invalid fields %v, want %v", fields, tc.fields)
				}
			case !errors.Is(err, tc.wantErr) || (err != nil && tc.wantErr == nil):
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if len(got) != len(tc.then) {
				t.Fatalf("got events %#v, want %#v", got, tc.then)
			}
			for i := range got {
				if got[i] != tc.then[i] {
					t.Errorf("event %d: got %#v, want %#v", i, got[i], tc.then[i])
				}
			}
		})
	}
}

func TestEvolveAndUnique(t *testing.T) {
	s := given(user.Created{Name: "A", Email: "a@example.com", Sub: "s1"})
	if got := user.Unique(s); strings.Join(got, " ") != "email#a@example.com sub#s1" {
		t.Fatalf("unique of a live user: %v", got)
	}
	s = user.Evolve(s, es.Record{Event: user.Suspended{Reason: "x"}})
	if s.Status != user.StatusSuspended || s.SuspendReason != "x" {
		t.Fatalf("after suspend: %+v", s)
	}
	s = user.Evolve(s, es.Record{Event: user.Deleted{Reason: "bye"}, OccurredAt: t0, Metadata: es.Metadata{Actor: "root"}})
	if s.Status != user.StatusDeleted || s.DeletedBy != "root" || s.DeleteReason != "bye" || !s.DeletedAt.Equal(t0) {
		t.Fatalf("after delete: %+v", s)
	}
	if got := user.Unique(s); len(got) != 0 {
		t.Fatalf("a deleted user holds %v", got)
	}
}

// TestForgottenStateHoldsNoPersonalData: the state after a forget, which
// snapshots and views are made of, holds neither name nor email.
func TestForgottenStateHoldsNoPersonalData(t *testing.T) {
	s := given(user.Created{Name: "Alice", Email: "alice@example.com"}, user.Deleted{}, user.Forgotten{Reason: "art. 17"})
	if s.Name != "" || s.Email != "" || !s.Forgotten || s.Status != user.StatusDeleted || s.ForgottenBy != "admin" || s.ForgetReason != "art. 17" {
		t.Fatalf("state after forget = %+v", s)
	}
	if keys := user.Unique(s); keys != nil {
		t.Fatalf("a forgotten user holds %v", keys)
	}
	r := user.NewRegistry()
	if got := r.PersonalFields(user.EmailChanged{}.EventType()); len(got) != 2 {
		t.Fatalf("personal fields of email_changed = %v", got)
	}
	if got := r.PersonalFields(user.Forgotten{}.EventType()); got != nil {
		t.Fatalf("the forget event declares personal fields %v", got)
	}
}
