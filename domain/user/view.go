package user

import (
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
)

// View is the read model of one user: what GET /users/{id} answers. It is a
// pure fold of the user's events, so a projection and a replay of the event
// store always agree.
type View struct {
	ID           string    `json:"id"`
	Version      int64     `json:"version"`
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	Sub          string    `json:"sub,omitempty"`
	Status       Status    `json:"status"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	DeletedAt    time.Time `json:"deletedAt,omitzero"`
	DeletedBy    string    `json:"deletedBy,omitempty"`
	DeleteReason string    `json:"reason,omitempty"`
	Forgotten    bool      `json:"forgotten,omitempty"`
	ForgottenAt  time.Time `json:"forgottenAt,omitzero"`
	ForgottenBy  string    `json:"forgottenBy,omitempty"`
	ForgetReason string    `json:"forgetReason,omitempty"`
}

// ApplyView folds one event into a view. rec.Event must be decoded. Events at
// or below the view's version are ignored, so duplicates change nothing.
func ApplyView(v View, rec es.Record) View {
	if rec.Version <= v.Version {
		return v
	}
	return ViewOf(rec.AggregateID, rec.Version, rec.OccurredAt, Evolve(v.state(), rec))
}

// ViewOf is the view of a user in state s at version, last changed at updatedAt.
func ViewOf(id string, version int64, updatedAt time.Time, s State) View {
	return View{
		ID: id, Version: version, Name: s.Name, Email: s.Email, Sub: s.Sub, Status: s.Status,
		CreatedAt: s.CreatedAt, UpdatedAt: updatedAt,
		DeletedAt: s.DeletedAt, DeletedBy: s.DeletedBy, DeleteReason: s.DeleteReason,
		Forgotten: s.Forgotten, ForgottenAt: s.ForgottenAt, ForgottenBy: s.ForgottenBy, ForgetReason: s.ForgetReason,
	}
}

// HeldEmail is the address the user holds alone, as Unique says: a live
// user's email; "" for a user not created or deleted. The read model's
// email lookup names the user holding an address by this rule.
func (v View) HeldEmail() string {
	if !holdsUnique(v.state()) {
		return ""
	}
	return v.Email
}

func (v View) state() State {
	return State{Name: v.Name, Email: v.Email, Sub: v.Sub, Status: v.Status, CreatedAt: v.CreatedAt,
		DeletedAt: v.DeletedAt, DeletedBy: v.DeletedBy, DeleteReason: v.DeleteReason,
		Forgotten: v.Forgotten, ForgottenAt: v.ForgottenAt, ForgottenBy: v.ForgottenBy, ForgetReason: v.ForgetReason}
}
