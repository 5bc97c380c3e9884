package es

// Limits are the sizes an append must stay within. They are DynamoDB's
// transaction limits; every store enforces them, so that code tested in memory
// does not fail only in AWS.
type Limits struct {
	MaxItemBytes        int // one stored item (an event with its attributes)
	MaxTransactionBytes int // all items of one append
	MaxTransactionItems int // events + guard claims and releases + idempotency record
}

// DefaultLimits are DynamoDB's: 400 KB per item, 4 MB and 100 items per transaction.
var DefaultLimits = Limits{
	MaxItemBytes:        400 * 1024,
	MaxTransactionBytes: 4 * 1024 * 1024,
	MaxTransactionItems: 100,
}

// Items is the number of stored items an append writes or deletes.
func (req AppendRequest) Items() int {
	n := len(req.Records) + len(req.Claims) + len(req.Releases)
	if req.Idempotency != nil {
		n++
	}
	return n
}

// Check returns a *LimitError when req exceeds l. itemSize gives the stored
// size of one record, as the store computes it; the transaction total counts
// the records only, so a store whose other items weigh more checks them too.
func (l Limits) Check(req AppendRequest, itemSize func(Record) int) error {
	if n := req.Items(); n > l.MaxTransactionItems {
		return &LimitError{What: "transaction items", Size: n, Limit: l.MaxTransactionItems}
	}
	total := 0
	for _, r := range req.Records {
		s := itemSize(r)
		if s > l.MaxItemBytes {
			return &LimitError{What: "item size", Size: s, Limit: l.MaxItemBytes}
		}
		total += s
	}
	if total > l.MaxTransactionBytes {
		return &LimitError{What: "transaction size", Size: total, Limit: l.MaxTransactionBytes}
	}
	return nil
}
