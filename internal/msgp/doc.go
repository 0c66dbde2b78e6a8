// Package msgp holds the msgpack pieces that slc writes by hand: appending
// the headers of maps, arrays, strings and binary values in their most
// compact form, and integers as compactly as github.com/vmihailenco/msgpack
// writes them with UseCompactInts; and Skip, which steps over one value of
// any type without recursion. Both the wire protocol's control bodies
// (internal/wire) and the msgpack serializer's compiled plans (codec) use
// it, so the two write the same bytes for the same values and skip unknown
// fields the same way.
//
//	b = msgp.AppendMapHeader(b, 2)
//	b = msgp.AppendStr(b, "code")
//	b = msgp.AppendUint(b, 7)
package msgp
