package peer

// DropChanges forgets u's unsaved changes, for benchmarks that decide
// without saving.
func DropChanges(u *User) { u.changes = u.changes[:0] }
