// Package msgp appends the msgpack encodings that slc writes by hand: the
// headers of maps, arrays, strings and binary values in their most compact
// form, and integers as compactly as github.com/vmihailenco/msgpack writes
// them with UseCompactInts. Both the wire protocol's control bodies
// (internal/wire) and the msgpack serializer's compiled plans (codec) use
// it, so the two write the same bytes for the same values.
//
//	b = msgp.AppendMapHeader(b, 2)
//	b = msgp.AppendStr(b, "code")
//	b = msgp.AppendUint(b, 7)
package msgp
