package teamviews

import "github.com/chronicle-go/chronicle/infra/projection"

// UserTeamsChunked is the user-teams projection writing at most n member
// rows per transaction: a small team then takes the chunked path.
func UserTeamsChunked(n int) projection.Projection { return userTeams{chunk: n} }
