package mailbox

import "github.com/slc-go/slc/peer"

// The inbox is what connection readers push into.
var _ peer.Sink = (*Inbox)(nil)
