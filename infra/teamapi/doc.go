// Package teamapi is the Team API on the generic edge (infra/apigw): the
// second aggregate's routes, served by the same two functions as the User
// API (the commands function writes, the queries function reads), each
// function's edge serving both APIs (httpapi.WithAPI, apigw.Config.More).
//
// A principal acts on a team through the user linked to its identity: the
// user holding the "sub#<sub>" unique value, read from the guards table
// (Guards), which is written in the same transaction as the user's
// creation and released by its deletion, so the link is as current as the
// event store. Who may do what is team.Policy, as data (team.Authorize):
// an admin everything; an owner of the team renames it and sets and
// removes members; a member reads it and leaves it; anyone else gets 403,
// whether or not the team exists.
package teamapi
