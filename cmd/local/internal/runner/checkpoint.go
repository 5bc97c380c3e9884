package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// checkpoints keep, for one stream, the sequence number of the last record
// of each shard that the mapping has finished with (handed on successfully,
// or given up on after its retries), in a file of Config.StateDir. Lambda
// keeps an event source mapping's position in the service, so a function
// that crashes is retried from its batch, not from the stream's start; the
// runner is the service here, and without a file a runner killed and
// started again would read the stream again from TRIM_HORIZON: every event
// relayed again, the consumers busy with duplicates for minutes on a long
// stream. Without a state directory nothing is kept (the stream is read
// from the mapping's starting position at every start, as before).
type checkpoints struct {
	path string // "" keeps nothing

	mu  sync.Mutex
	seq map[string]string // shard id -> sequence number
}

// loadCheckpoints reads the checkpoints of streamARN from dir. The file is
// named after the stream's ARN, which DynamoDB (Local too) makes unique per
// table creation: a table created again starts afresh.
func loadCheckpoints(dir, streamARN string) (*checkpoints, error) {
	c := &checkpoints{seq: map[string]string{}}
	if dir == "" {
		return c, nil
	}
	sum := sha256.Sum256([]byte(streamARN))
	c.path = filepath.Join(dir, "stream-"+hex.EncodeToString(sum[:12])+".json")
	b, err := os.ReadFile(c.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("read stream checkpoints: %w", err)
	}
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil || f.Stream != streamARN {
		// Not ours, or torn by a crash mid-write (rename makes that
		// unlikely): start afresh rather than refuse to start.
		return c, nil
	}
	c.seq = f.Shards
	if c.seq == nil {
		c.seq = map[string]string{}
	}
	return c, nil
}

type checkpointFile struct {
	Stream string            `json:"stream"`
	Shards map[string]string `json:"shards"`
}

// reset forgets every position and removes the file, so that a runner
// killed before its next set does not resume from the forgotten ones.
func (c *checkpoints) reset() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq = map[string]string{}
	if c.path == "" {
		return nil
	}
	if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reset stream checkpoints: %w", err)
	}
	return nil
}

// get is the checkpoint of shard, "" when none.
func (c *checkpoints) get(shard string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq[shard]
}

// set records that the mapping is done with shard up to seq, and writes
// the file (a new file renamed over the old, so that a crash leaves one or
// the other).
func (c *checkpoints) set(streamARN, shard, seq string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq[shard] = seq
	if c.path == "" {
		return nil
	}
	b, err := json.Marshal(checkpointFile{Stream: streamARN, Shards: c.seq})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("write stream checkpoint: %w", err)
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write stream checkpoint: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("write stream checkpoint: %w", err)
	}
	return nil
}
