package lambdafn

import (
	"fmt"
	"strconv"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
)

// defaultSnapshotInterval is the template's SnapshotInterval default.
const defaultSnapshotInterval = 100

// snapshotInterval reads SNAPSHOT_INTERVAL: events between snapshots,
// default 100, 0 for none.
func snapshotInterval(getenv Getenv) (int, error) {
	v := getenv("SNAPSHOT_INTERVAL")
	if v == "" {
		return defaultSnapshotInterval, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("SNAPSHOT_INTERVAL=%q: want a whole number of events, 0 for no snapshots", v)
	}
	return n, nil
}

// defaultStateCache is how many users a commands container keeps folded
// (es.Options.CacheSize): a user state is a few hundred bytes, so 4,096 of
// them fit in about a megabyte of the function's memory.
const defaultStateCache = 4096

// stateCacheSize reads STATE_CACHE_SIZE: users whose state a commands
// container keeps between commands, default 4,096, 0 for none (every
// command reads the user first).
func stateCacheSize(getenv Getenv) (int, error) {
	v := getenv("STATE_CACHE_SIZE")
	if v == "" {
		return defaultStateCache, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("STATE_CACHE_SIZE=%q: want a whole number of users, 0 for no cache", v)
	}
	return n, nil
}

// userService is the User service of both the commands and the queries
// function, built in this one place so that both load a user the same way:
// the latest snapshot, then the newer events. The queries function never
// writes, but es.Service reads snapshots only when SnapshotEvery is set;
// with empty options every read replayed the stream from version 1.
// cacheSize is es.Options.CacheSize: the commands function's; the queries
// function, which never executes a command, passes 0.
func userService(store es.Store, snapshotEvery, cacheSize int) *user.Service {
	return user.NewService(store, es.Options{SnapshotEvery: snapshotEvery, CacheSize: cacheSize})
}

// teamService is the Team service of both the commands and the queries
// function, on the users' store, tuned as userService is.
func teamService(store es.Store, snapshotEvery, cacheSize int) *team.Service {
	return team.NewService(store, es.Options{SnapshotEvery: snapshotEvery, CacheSize: cacheSize})
}
