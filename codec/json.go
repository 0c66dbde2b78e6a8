package codec

import "encoding/json"

type jsonSerializer struct{}

var defaultJSON Serializer = jsonSerializer{}

// NewJSON returns the encoding/json serializer, with the wire name "json".
//
// Append produces the output of json.Marshal. Unmarshal and Generic accept
// exactly one JSON value; encoding/json refuses nesting deeper than 10000
// levels, so hostile input cannot exhaust the stack. Generic produces what
// json.Unmarshal stores in an any: nil, bool, float64, string, []any and
// map[string]any.
func NewJSON() Serializer { return defaultJSON }

func (jsonSerializer) Name() string   { return "json" }
func (jsonSerializer) Version() uint8 { return 1 }

func (jsonSerializer) Append(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	if dst == nil {
		return b, nil
	}
	return append(dst, b...), nil
}

func (jsonSerializer) Unmarshal(data []byte, v any) error {
	return json.Unmarshal(data, v)
}

func (jsonSerializer) Generic(data []byte) (any, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}
