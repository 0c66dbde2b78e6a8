package peer

import (
	"strconv"
	"sync/atomic"

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
	// Err is set when Body could not be decoded; Raw still holds the bytes.
	Err error

	buf *recvBuf // the pooled buffer Raw lies in, for Release
}

// recvBuf is the pooled buffer a large message was read into. Every copy of
// the Message shares it, so only the first Release gives it back.
type recvBuf struct{ b atomic.Pointer[[]byte] }

func newRecvBuf(b []byte) *recvBuf {
	rb := new(recvBuf)
	rb.b.Store(&b)
	return rb
}

// Release gives the buffer a large message was read into back to slc, for
// a later large message: a message larger than the connection's read
// buffer (256 KiB by default) is read into a buffer of its own, and
// reusing these spares an allocation, its zeroing and the garbage
// collection of a buffer per message. After Release, Raw, and the Body of
// a raw message (which is Raw), must not be used, since later messages
// overwrite them; a Body decoded by slc's msgpack or JSON serializer holds
// no reference to Raw and stays valid.
//
// Release is optional: an unreleased buffer is garbage-collected as usual.
// It does nothing for smaller messages and for messages that were
// decompressed or put together from chunks, and only the first call, on
// any copy of the Message, has an effect.
func (m Message) Release() {
	if m.buf == nil {
		return
	}
	if b := m.buf.b.Swap(nil); b != nil {
		wire.PutLarge(*b)
	}
}
