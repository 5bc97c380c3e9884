package simlatency

import (
	"testing"
	"time"
)

func TestDelayByServiceID(t *testing.T) {
	d, err := Parse("on")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]time.Duration{"DynamoDB": 4 * time.Millisecond, "SQS": 10 * time.Millisecond, "DynamoDB Streams": 0, "SESv2": 0} {
		if got := d.of(id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	d["*"] = time.Millisecond
	if got := d.of("DynamoDB Streams"); got != time.Millisecond {
		t.Errorf("DynamoDB Streams with *=1ms: %s", got)
	}
}
