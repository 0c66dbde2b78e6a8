// Package spread is a client of the Spread 4 daemon (www.spread.org), the
// group communication toolkit: a Go program connects to a daemon, joins
// and leaves groups, multicasts with every service level and a message
// type, and receives regular and membership messages, next to programs
// that use Spread's C, Java or Python libraries.
//
//	c, err := spread.Dial(ctx, spread.DefaultAddr, spread.WithName("alice"))
//	defer c.Close()
//	err = c.Join(ctx, "chat")
//	err = c.Multicast(ctx, spread.Agreed, "chat", 1, "hello")
//	d, err := c.Receive(ctx) // *spread.Message or *spread.Membership
//
// # Specification
//
// Spread's client protocol has no separate document; it is defined by
// the C library, libspread's sp.c and sp.h, and the daemon's session.c
// (Spread 4.x, www.spread.org; no code of them is copied here), with the
// Spread User's Guide for the meaning of the service levels and
// membership messages.
//
// # Protocol
//
// Connecting:
//
//	client  4 0 0, membership | priority<<4, len(name), name   (version 4.0.0)
//	daemon  len (signed, at most 90), the authentication method names
//	client  90 bytes: "NULL", NUL-padded (3 methods of 30 bytes)
//	daemon  1 (accept) or a negative error code (one byte)
//	daemon  3 bytes: the daemon's version
//	daemon  len, the private group name ("#alice#daemon")
//
// Then every message, both ways, is a 48-byte header, num_groups group
// names of 32 bytes (NUL-padded), and data_len bytes of data:
//
//	int32     type       service bits, or JOIN 0x10000, LEAVE 0x20000,
//	                     KILL 0x40000 (disconnect), or membership bits
//	char[32]  sender     the sender's private group (membership: the group)
//	int32     num_groups
//	int32     hint       (mess_type << 8) & 0x00ffff00
//	int32     data_len
//
// JOIN and LEAVE name the group; KILL names the client's own private
// group (SP_disconnect). A little-endian sender sets 0x80000080 in type
// and in hint; a big-endian one does not, and its integers are
// big-endian. This client writes little-endian with the flag and reads
// both: type, num_groups and data_len follow type's flag, hint its own,
// as Spread's SP_scat_receive does.
//
// A membership message's data is the group ID (three int32), the number
// of VS sets, the offset of this client's VS set counted from the first
// VS set, and the VS sets (each an int32 count and 32-byte names). Its
// type has REG_MEMB_MESS (0x1000) and a CAUSED_BY_ flag (JOIN 0x100,
// LEAVE 0x200, DISCONNECT 0x400, NETWORK 0x800); TRANSITION_MESS (0x2000)
// marks a transitional view, and CAUSED_BY_LEAVE alone this client's own
// leave. Its groups are the members; the client's index among them is
// found by name, as SP_receive does (hint is not used). REJECT_MESS
// (0x400000) marks a message of this client that the daemon sent back:
// 4 more bytes after the header hold its original type.
//
// # The API, and slc's groups
//
// Client has the shape of slc's group package (group.Member): Join,
// Leave, Multicast and MulticastGroups (returning a serial), Receive and
// TryReceive returning a Delivery that is a *Message or a *Membership,
// Poll and Members; Service, Reason, ViewID, Message and Membership have
// group's names, and Service and Reason are group's types. ViewID,
// Message and Membership are this package's own types because Spread's
// members are private group names, its bodies bytes and its views carry
// VS sets, where group has slc peer IDs and typed bodies.
//
// Client.Group returns a GroupClient: the same client with group's own
// types in its signatures (group.Service, group.Delivery, slc.PeerID).
// *group.Member and *GroupClient satisfy one interface (a test checks
// it), so a program switches between slc's groups and a Spread daemon
// with one option at start-up:
//
//	type Groups interface {
//		Join(ctx context.Context, group string) error
//		Multicast(ctx context.Context, svc group.Service, group string, msgType int16, v any) (uint64, error)
//		Receive(ctx context.Context) (group.Delivery, error)
//		// Leave, MulticastGroups, TryReceive, Poll, Members, Close
//	}
//	var g Groups = member // *group.Member
//	if useSpread {
//		c, err := spread.Dial(ctx, addr, spread.WithName("alice"))
//		g = c.Group()
//	}
//
// This view is the one place where the package imports group; bodies
// stay bytes ([]byte or string to send, []byte received).
//
// # Ambiguities, and the choices made
//
//   - Priority: the connect byte holds membership in bit 0 and priority
//     in the high nibble; Spread's library clamps priority to 0 or 1, and
//     WithPriority refuses other values.
//   - Authentication list: read as names separated by spaces or NULs.
//     Only NULL is implemented; a daemon that does not offer it (or sends
//     an empty list) fails Dial with ErrNoNullAuth, and a list longer than
//     90 bytes with ErrProtocol. The choice is always 90 bytes: "NULL"
//     and zeros.
//   - A negative byte where the list length is expected is taken for an
//     error code (daemons refuse early this way), as is any accept byte
//     other than 1: both give an *Error.
//   - Version: daemons older than 4 are refused (ErrProtocol); their
//     membership data differs.
//   - The hint of JOIN, LEAVE and KILL carries only the endianness flag.
//     Names are NUL-padded to 32 bytes; a name of 32 bytes without a NUL
//     from the daemon is ErrProtocol.
//   - Names: Join and Leave take Spread's group names (1 to 31
//     characters from '$' to '~'); Multicast also takes private group
//     names, which contain '#'.
//   - Limits: a send whose data plus 32 bytes per group exceeds 144000
//     bytes (MAX_MESSAGE_BODY_LEN) is refused with ErrTooLarge, as
//     SP_multicast returns MESSAGE_TOO_LONG. A received message over
//     WithLimits (1 MiB of data, 1024 groups) or with negative counts is
//     ErrProtocol, checked before allocating, and closes the session
//     (Spread's library would return ILLEGAL_MESSAGE or BUFFER_TOO_SHORT
//     and keep the session; a Go client has no buffer to grow).
//   - Joined and Left: for JOIN, LEAVE and DISCONNECT the changed member
//     is the first name of the first VS set, as SP_get_memb_info takes it.
//     Otherwise (NETWORK, or no VS sets) they are the difference from the
//     previous regular view this client saw of the group.
//   - The self-leave message has no members: Members is nil and Left is
//     this client.
//   - A membership message's Index is -1 when the client is not among
//     its members.
//   - Poll counts deliveries waiting, not bytes as SP_poll does.
//   - Service of a received message keeps the bits the daemon sent
//     (Valid may be false if a daemon set several).
//   - Sessions do not survive a broken connection (the daemon forgets the
//     groups): the client ends with ErrConnLost and does not redial.
//     Dial again and join again.
//   - Close sends KILL_MESS (as SP_disconnect) and closes without waiting
//     for the daemon.
//
// # Concurrency
//
// A Client is safe for concurrent use. One reader goroutine reads the
// daemon's messages into the inbox (WithInbox); when it is full, reading
// stops. Sends are written under a lock, whole: a send cut by its context
// ends the session, since half a message would corrupt the stream. Close
// waits for the reader.
package spread
