package es

import (
	"encoding/json"
	"time"
)

// Event is a domain event: a fact in the past tense with a stable, versioned
// name such as "user.created.v1". Renaming the Go type never changes stored data.
type Event interface {
	EventType() string
}

// Metadata says who caused an event, why, and as part of which request.
type Metadata struct {
	Actor         string `json:"actor,omitempty"`
	Reason        string `json:"reason,omitempty"`
	CorrelationID string `json:"correlationId,omitempty"`
	CausationID   string `json:"causationId,omitempty"`
	CommandID     string `json:"commandId,omitempty"`
	RequestID     string `json:"requestId,omitempty"`
	// TraceParent is the W3C traceparent of the command that caused the
	// event, when it was traced: the consumers' spans join its trace.
	TraceParent string `json:"traceparent,omitempty"`
}

// Record is an event as it is stored: immutable once appended.
type Record struct {
	ID            string          `json:"eventId"`       // UUID v7, time ordered
	AggregateID   string          `json:"aggregateId"`   // stream the event belongs to
	AggregateType string          `json:"aggregateType"` // "user"
	Version       int64           `json:"version"`       // 1-based position in the stream, no gaps
	Type          string          `json:"type"`          // versioned type name, "user.created.v1"
	SchemaVersion int             `json:"schemaVersion"` // shape of Data under Type
	OccurredAt    time.Time       `json:"occurredAt"`    // UTC
	Data          json.RawMessage `json:"data"`          // the event, encoded by the registry
	Metadata      Metadata        `json:"metadata"`

	// Event is the decoded event in its current shape (after upcasting). Stores
	// neither read nor write it; Registry.Decode fills it.
	Event Event `json:"-"`
}
