package user

import (
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/esjson"
)

// The user events decode their own JSON (es.EventDecoder): a replay decodes
// every event of a stream, and encoding/json's reflection was most of its
// cost. Each lists its fields under their JSON names, as in its struct
// tags; codec_test.go checks that every event decodes as encoding/json
// decodes it.

// DecodeEvent implements es.EventDecoder.
func (Created) DecodeEvent(data []byte) (es.Event, error) {
	var e Created
	err := esjson.DecodeStrings(data, esjson.Field{Name: "name", Dst: &e.Name},
		esjson.Field{Name: "email", Dst: &e.Email}, esjson.Field{Name: "sub", Dst: &e.Sub})
	return e, err
}

// DecodeEvent implements es.EventDecoder.
func (Renamed) DecodeEvent(data []byte) (es.Event, error) {
	var e Renamed
	err := esjson.DecodeStrings(data, esjson.Field{Name: "name", Dst: &e.Name})
	return e, err
}

// DecodeEvent implements es.EventDecoder.
func (EmailChanged) DecodeEvent(data []byte) (es.Event, error) {
	var e EmailChanged
	err := esjson.DecodeStrings(data, esjson.Field{Name: "email", Dst: &e.Email},
		esjson.Field{Name: "previous", Dst: &e.Previous})
	return e, err
}

// DecodeEvent implements es.EventDecoder.
func (Suspended) DecodeEvent(data []byte) (es.Event, error) {
	var e Suspended
	err := esjson.DecodeStrings(data, esjson.Field{Name: "reason", Dst: &e.Reason})
	return e, err
}

// DecodeEvent implements es.EventDecoder.
func (Reactivated) DecodeEvent(data []byte) (es.Event, error) {
	var e Reactivated
	err := esjson.DecodeStrings(data, esjson.Field{Name: "reason", Dst: &e.Reason})
	return e, err
}

// DecodeEvent implements es.EventDecoder.
func (Deleted) DecodeEvent(data []byte) (es.Event, error) {
	var e Deleted
	err := esjson.DecodeStrings(data, esjson.Field{Name: "reason", Dst: &e.Reason})
	return e, err
}

// DecodeEvent implements es.EventDecoder.
func (Forgotten) DecodeEvent(data []byte) (es.Event, error) {
	var e Forgotten
	err := esjson.DecodeStrings(data, esjson.Field{Name: "reason", Dst: &e.Reason})
	return e, err
}
