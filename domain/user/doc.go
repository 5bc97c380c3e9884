// Package user is the User aggregate of the reference service: its commands,
// events and rules, written as an es.Decider. Email uniqueness and "one user
// per identity" are unique values the kernel claims atomically with the append.
package user
