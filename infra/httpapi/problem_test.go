package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/apigw"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// problemFor is the one place errors become statuses; the route tests reach
// most of it through the API, this table every branch, wrapped as the
// kernel and the stores wrap them.
func TestProblemFor(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("execute on u1 after 5 attempts: append u1 v3: %w", err) }
	for _, tc := range []struct {
		err    error
		status int
		field  string
	}{
		{apigw.BadField("limit", "must be 1..1000"), http.StatusBadRequest, "limit"},
		{&user.ValidationError{Fields: []user.FieldError{{Field: "name", Message: "must not be empty"}}}, http.StatusBadRequest, "name"},
		{wrap(fmt.Errorf("cursor: %w", readmodel.ErrBadCursor)), http.StatusBadRequest, "cursor"},
		{&apigw.Error{Kind: apigw.Unauthenticated, Detail: "x"}, http.StatusUnauthorized, ""},
		{apigw.Deny("x"), http.StatusForbidden, ""},
		{user.ErrNotFound, http.StatusNotFound, ""},
		{&apigw.Error{Kind: apigw.NoRoute, Detail: "x"}, http.StatusNotFound, ""},
		{&apigw.Error{Kind: apigw.MethodNotAllowed, Detail: "x", Allow: []string{"GET"}}, http.StatusMethodNotAllowed, ""},
		{wrap(user.ErrDeleted), http.StatusConflict, ""},
		{user.ErrAlreadySuspended, http.StatusConflict, ""},
		{user.ErrNotSuspended, http.StatusConflict, ""},
		{user.ErrAlreadyExists, http.StatusConflict, ""},
		{wrap(&es.DuplicateError{Key: "email#a@example.com"}), http.StatusConflict, "email"},
		{wrap(&es.DuplicateError{Key: "sub#alice"}), http.StatusConflict, "sub"},
		{wrap(es.ErrConflict), http.StatusConflict, ""},
		{wrap(es.ErrIdempotencyReplay), http.StatusConflict, ""},
		{&es.PreconditionError{Expected: 1, Current: 4}, http.StatusPreconditionFailed, ""},
		{wrap(es.ErrBusy), http.StatusConflict, ""},
		{wrap(&es.ReleaseError{Key: "email#a@example.com"}), http.StatusInternalServerError, ""},
		{&apigw.Error{Kind: apigw.TooLarge, Detail: "x"}, http.StatusRequestEntityTooLarge, ""},
		{wrap(&es.LimitError{What: "item size", Size: 500000, Limit: 409600}), http.StatusRequestEntityTooLarge, ""},
		{&apigw.Error{Kind: apigw.UnsupportedMedia, Detail: "x"}, http.StatusUnsupportedMediaType, ""},
		{wrap(es.ErrIdempotencyMismatch), http.StatusUnprocessableEntity, ""},
		{errors.New("dynamodb: throttled"), http.StatusInternalServerError, ""},
		{wrap(es.ErrUnknownEvent), http.StatusInternalServerError, ""},
		{&apigw.Error{Kind: apigw.Unavailable, Detail: "x", Cause: errors.New("down")}, http.StatusServiceUnavailable, ""},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			p := problemFor(tc.err)
			if p.Status != tc.status || p.Type == "" || p.Title == "" || p.Detail == "" {
				t.Fatalf("problem %+v, want status %d", p, tc.status)
			}
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Errorf("errors %+v, want field %s", p.Errors, tc.field)
			}
			if p.Status == http.StatusInternalServerError && p.Detail != apigw.InternalProblem().Detail {
				t.Errorf("a 500 says more than the generic detail: %q", p.Detail)
			}
		})
	}
	if p := problemFor(&es.PreconditionError{Expected: 1, Current: 4}); p.CurrentVersion == nil || *p.CurrentVersion != 4 || p.Headers["ETag"] != `"4"` {
		t.Errorf("412 %+v: want current version 4 and its ETag", p)
	}
}
