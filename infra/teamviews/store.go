package teamviews

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// Store reads the Team service's projections: what the Teams API answers
// from. Its reads are eventually consistent (a client that needs its own
// write reads the event store: minVersion). It is safe for concurrent use.
type Store struct {
	rm *readmodel.Store
}

// New returns the reader of the team projections in rm (their active
// generations).
func New(rm *readmodel.Store) *Store { return &Store{rm: rm} }

// Team returns the view of team id, false when the projection has none.
func (s *Store) Team(ctx context.Context, id string) (team.View, bool, error) {
	return readView(ctx, s.rm, id, false)
}

// UserTeams returns the teams user userID is a member of, by when it
// joined, then team id; none is an empty list.
func (s *Store) UserTeams(ctx context.Context, userID string) ([]team.Membership, error) {
	g, err := s.rm.GenerationOf(ctx, ProjectionUserTeams)
	if err != nil {
		return nil, err
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.rm.Table()),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": readmodel.S(readmodel.GenerationPK(g, userTeamsPK(userID)))},
	}
	out := []team.Membership{}
	for {
		page, err := s.rm.Client().Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query teams of user %s: %w", userID, err)
		}
		for _, item := range page.Items {
			m, ok, err := membershipFrom(item)
			if err != nil {
				return nil, fmt.Errorf("teams of user %s: %w", userID, err)
			}
			if ok {
				out = append(out, m)
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	slices.SortFunc(out, func(a, b team.Membership) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.TeamID, b.TeamID))
	})
	return out, nil
}
