package codec

import (
	"bytes"
	"fmt"
)

type rawSerializer struct{}

var defaultRaw Serializer = rawSerializer{}

// NewRaw returns the serializer for bytes as they are, with the wire name
// "raw". Append accepts []byte and string; Unmarshal accepts *[]byte (the
// bytes are copied) and *string; Generic returns its input unchanged.
func NewRaw() Serializer { return defaultRaw }

func (rawSerializer) Name() string   { return "raw" }
func (rawSerializer) Version() uint8 { return 1 }

func (rawSerializer) Append(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case []byte:
		return append(dst, v...), nil
	case string:
		return append(dst, v...), nil
	}
	return dst, fmt.Errorf("codec: raw serializer cannot encode %T: want []byte or string", v)
}

func (rawSerializer) Unmarshal(data []byte, v any) error {
	switch v := v.(type) {
	case *[]byte:
		if v != nil {
			*v = bytes.Clone(data)
			return nil
		}
	case *string:
		if v != nil {
			*v = string(data)
			return nil
		}
	}
	return fmt.Errorf("codec: raw serializer cannot decode into %T: want *[]byte or *string", v)
}

// Generic returns data itself: the caller owns it.
func (rawSerializer) Generic(data []byte) (any, error) { return data, nil }
