package runner

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCheckpointsSurviveARestart: what one runner records, the next one on
// the same state directory reads, per stream; another stream (a table
// created again) starts afresh, and a torn file is ignored.
func TestCheckpointsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	const arn = "arn:aws:dynamodb:ddblocal:000000000000:table/x/stream/2026-01-01T00:00:00.000"
	c, err := loadCheckpoints(dir, arn)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.set(arn, "shard-1", "100"); err != nil {
		t.Fatal(err)
	}
	if err := c.set(arn, "shard-2", "7"); err != nil {
		t.Fatal(err)
	}
	again, err := loadCheckpoints(dir, arn)
	if err != nil {
		t.Fatal(err)
	}
	if again.get("shard-1") != "100" || again.get("shard-2") != "7" || again.get("shard-3") != "" {
		t.Errorf("after a restart: %v", again.seq)
	}
	other, err := loadCheckpoints(dir, arn+"1")
	if err != nil || len(other.seq) != 0 {
		t.Errorf("another stream: %v, %v", other.seq, err)
	}
	if err := os.WriteFile(again.path, []byte(`{"stream":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if torn, err := loadCheckpoints(dir, arn); err != nil || len(torn.seq) != 0 {
		t.Errorf("torn file: %v, %v", torn.seq, err)
	}
	none, err := loadCheckpoints("", arn)
	if err != nil || none.set(arn, "s", "1") != nil {
		t.Errorf("without a state directory: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || filepath.Ext(entries[0].Name()) != ".json" {
		t.Errorf("state directory holds %v", entries)
	}
}
