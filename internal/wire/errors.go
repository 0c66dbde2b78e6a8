package wire

import (
	"errors"
	"fmt"
)

// Code classifies a protocol violation, a handshake rejection or a goodbye.
// Codes travel in REJECT and GOODBYE frames; they are append-only.
type Code uint16

// Codes. Values are part of the wire protocol: never renumber them.
const (
	CodeNone             Code = 0  // no error: a normal goodbye
	CodeMalformed        Code = 1  // a frame or body could not be parsed
	CodeBadMagic         Code = 2  // the preamble is not slc's
	CodeVersion          Code = 3  // no protocol version in common
	CodeSecurityMismatch Code = 4  // one side is in secure mode, the other is not, or they use different modes
	CodeFrameTooLarge    Code = 5  // a frame's length exceeds the receiver's maximum
	CodeUnknownFrame     Code = 6  // a frame type the receiver must understand but does not
	CodeUnexpectedFrame  Code = 7  // a frame that is not allowed at this point
	CodeBadHello         Code = 8  // a hello with missing or invalid fields
	CodeNameInUse        Code = 9  // another live instance holds this name (retry later)
	CodeNameMismatch     Code = 10 // the address answered with a different name than the session's
	CodeUnsupportedCodec Code = 11 // the peer cannot decode the sender's serializer or compressor
	CodeUnauthorized     Code = 12 // secure mode: the key is not trusted for this name
	CodeBusy             Code = 13 // the listener has too many connections (retry later)
	CodeShutdown         Code = 14 // the node is shutting down
	CodeTooLarge         Code = 15 // a message exceeds the receiver's maximum message size
	CodeTimeout          Code = 16 // the handshake did not complete in time
	CodeDuplicate        Code = 17 // a live connection between the same two nodes already exists
	CodeInternal         Code = 18 // the sender failed internally
	CodeSequence         Code = 19 // a DATA frame broke the sequence or chunking rules
	CodeAuthFailed       Code = 20 // secure mode: decryption or handshake authentication failed
	CodeSameName         Code = 21 // the remote uses this node's own name
)

var codeNames = [...]string{
	CodeNone:             "none",
	CodeMalformed:        "malformed",
	CodeBadMagic:         "bad magic",
	CodeVersion:          "version mismatch",
	CodeSecurityMismatch: "security mode mismatch",
	CodeFrameTooLarge:    "frame too large",
	CodeUnknownFrame:     "unknown frame type",
	CodeUnexpectedFrame:  "unexpected frame",
	CodeBadHello:         "bad hello",
	CodeNameInUse:        "name in use",
	CodeNameMismatch:     "name mismatch",
	CodeUnsupportedCodec: "unsupported codec",
	CodeUnauthorized:     "unauthorized",
	CodeBusy:             "busy",
	CodeShutdown:         "shutting down",
	CodeTooLarge:         "message too large",
	CodeTimeout:          "handshake timeout",
	CodeDuplicate:        "duplicate connection",
	CodeInternal:         "internal error",
	CodeSequence:         "sequence violation",
	CodeAuthFailed:       "authentication failed",
	CodeSameName:         "same name",
}

// String returns a short human-readable name for the code.
func (c Code) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Retryable reports whether a connection that failed with this code may
// succeed if tried again later. Protocol violations and trust failures are
// not retryable; a busy listener or a name still held by a dying connection
// are.
func (c Code) Retryable() bool {
	switch c {
	case CodeNameInUse, CodeBusy, CodeShutdown, CodeTimeout, CodeInternal, CodeAuthFailed:
		return true
	}
	return false
}

// ProtocolError is a violation of the wire protocol, or a handshake that a
// side rejected. Remote is true when the other side reported it (in a
// REJECT or GOODBYE frame) rather than this side detecting it.
type ProtocolError struct {
	Code   Code
	Reason string
	Remote bool
}

func (e *ProtocolError) Error() string {
	who := "protocol error"
	if e.Remote {
		who = "rejected by peer"
	}
	if e.Reason == "" {
		return who + ": " + e.Code.String()
	}
	return who + ": " + e.Code.String() + ": " + e.Reason
}

// Permanent reports whether retrying cannot help. Supervisors stop, rather
// than restart, a connection that failed with a permanent error.
func (e *ProtocolError) Permanent() bool { return !e.Code.Retryable() }

// Is makes errors.Is(err, ErrInvalidVersion) and the other sentinels match
// a ProtocolError with the same code.
func (e *ProtocolError) Is(target error) bool {
	t, ok := target.(*ProtocolError)
	return ok && t.Reason == "" && t.Code == e.Code
}

func protoErr(c Code, format string, args ...any) *ProtocolError {
	if len(args) == 0 {
		return &ProtocolError{Code: c, Reason: format}
	}
	return &ProtocolError{Code: c, Reason: fmt.Sprintf(format, args...)}
}

// Sentinels for errors.Is. A *ProtocolError with the same Code matches.
var (
	ErrBadMagic       error = &ProtocolError{Code: CodeBadMagic}
	ErrInvalidVersion error = &ProtocolError{Code: CodeVersion}
	ErrFrameTooLarge  error = &ProtocolError{Code: CodeFrameTooLarge}
	ErrUnknownFrame   error = &ProtocolError{Code: CodeUnknownFrame}
	ErrMalformed      error = &ProtocolError{Code: CodeMalformed}
)

// AsProtocolError returns the *ProtocolError in err's chain, if any.
func AsProtocolError(err error) (*ProtocolError, bool) {
	var pe *ProtocolError
	ok := errors.As(err, &pe)
	return pe, ok
}
