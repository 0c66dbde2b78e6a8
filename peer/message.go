package peer

import (
	"strconv"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/wire"
)

// ID is the unique name of a node. A session with a remote node is keyed by
// its ID; in secure mode the ID is bound to the node's public key.
type ID string

// String returns the ID as a string.
func (id ID) String() string { return string(id) }

// MsgID identifies a message sent by a communicator. IDs increase strictly
// for the life of the sending node's instance, so acknowledgements can be
// cumulative: a peer that acknowledges an ID has every earlier message that
// was sent to it.
type MsgID uint64

// String returns the decimal form of the ID.
func (id MsgID) String() string { return strconv.FormatUint(uint64(id), 10) }

// Message is one message taken from the inbound mailbox.
type Message struct {
	// From is the sender.
	From ID
	// Instance is the sender's instance ID: random per run of its
	// process, or kept in its store. ID counts within it.
	Instance uint64
	// ID is the sender's message ID.
	ID MsgID
	// Type is the name the sender registered for the body's Go type, or ""
	// for unregistered values and raw bytes.
	Type string
	// Body is the decoded value: a T for a type registered with
	// Register[T] (a value, not a *T), generic maps and slices for
	// unregistered structured data, and []byte for raw messages.
	Body any
	// Raw is the serialized body exactly as the sender's serializer
	// produced it (after decompression). For raw messages it is the
	// payload. The slice is owned by the receiver.
	Raw []byte
	// Serializer is the wire ID of the serializer that produced Raw.
	Serializer codec.ID
	idx        uint32 // Raw's number in lease
	// Err is set when Body could not be decoded; Raw still holds the bytes.
	Err error

	lease *wire.Lease // the read buffer Raw lies in, for Release
}

// Release tells slc that the receiver is done with Raw, so that the buffer
// the message was read into can take later messages. A connection reads
// many small messages into one buffer (256 KiB by default), and a large
// message into a buffer of its own; once every message read into a buffer
// has been released, the buffer is reused, which spares an allocation, its
// zeroing and its garbage collection. After Release, Raw, and the Body of
// a raw message (which is Raw), must not be used, since later messages
// overwrite them; a Body decoded by slc's msgpack or JSON serializer holds
// no reference to Raw and stays valid.
//
// Release is optional: a buffer holding a message that is never released
// is garbage-collected as usual, once nothing refers to it. Release does
// nothing for messages that were decompressed, put together from chunks
// or restored from a store, and only the first call, on any copy of the
// Message, has an effect.
func (m Message) Release() {
	if m.lease != nil {
		m.lease.Release(m.idx)
	}
}
