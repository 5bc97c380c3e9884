package lambdafn

import (
	"fmt"
	"strconv"

	"github.com/chronicle-go/chronicle/domain/es"
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

// userService is the User service of both the commands and the queries
// function, built in this one place so that both load a user the same way:
// the latest snapshot, then the newer events. The queries function never
// writes, but es.Service reads snapshots only when SnapshotEvery is set;
// with empty options every read replayed the stream from version 1.
func userService(store es.Store, snapshotEvery int) *es.Service[user.State, user.Command] {
	return es.NewService(user.Decider(), user.NewRegistry(), store, es.Options{SnapshotEvery: snapshotEvery})
}
