// Package mailbox implements a node's inbound mailbox, the Inbox.
//
// Each remote peer connection has one reader goroutine that decodes
// messages and pushes them, in order, into the Inbox with Push; the
// application takes them out with Receive (blocking), TryReceive, Take or
// a subscription. The Inbox keeps one bounded FIFO queue per source (the
// peer a message came from) plus the arrival order across sources.
//
//	ib := mailbox.New(mailbox.Config{})
//	defer ib.Close()
//
//	// In a connection's reader goroutine:
//	n, err := ib.Push(connDone, from, batch)
//	ack(batch[:n]) // exactly the messages the inbox accepted
//
//	// In the application:
//	msg, err := ib.Receive(ctx)              // oldest message of all
//	msg, err = ib.Receive(ctx, "a", "b")     // oldest from a or b
//	msg, ok := ib.TryReceive()               // without blocking
//	err = ib.ReceiveInto(ctx, &msg)          // Receive, into msg
//
// # Ordering
//
// Messages from one source come out in the order they were pushed. An
// unfiltered Receive returns the oldest waiting message of all, in global
// arrival order: the order in which Push placed messages, across sources.
// A Receive that names sources returns the oldest message among those
// sources and leaves every other message queued, so filtered and
// unfiltered receives can be mixed freely without reordering any source.
//
// The unfiltered case costs O(1) amortized regardless of the number of
// sources. A filtered receive costs O(number of named sources).
//
// # Capacity and backpressure
//
// Each source's queue is bounded both by bytes, counted as
// len(Message.Raw) + MessageOverhead per message, and by message count
// (Config.MaxBytes and Config.MaxMessages, per source). While a source's
// queue is full, Push blocks; it resumes when the application makes room
// or returns when the caller's done channel closes or the inbox closes.
// A full queue never drops a message. A message larger than MaxBytes is
// still accepted when its queue is empty, so one huge message cannot
// deadlock a connection.
//
// Push returns how many messages it placed, always a prefix of the batch,
// so the caller can acknowledge exactly those:
//
//	n, err := ib.Push(done, from, batch)
//	switch {
//	case err == nil: // all placed
//	case errors.Is(err, mailbox.ErrCanceled): // done closed; batch[n:] not placed
//	case errors.Is(err, mailbox.ErrClosed): // inbox closed
//	}
//
// One slow source does not hold up the others: capacity and blocking are
// per source. A blocked Push is woken once its queue has drained to three
// quarters of both limits (or is empty), so it places a run of messages
// per wake-up.
//
// Queues are ring buffers of Message values that grow as needed and give
// memory back lazily: a queue that grew for a burst releases its buffer
// once the burst has drained, while a queue that regularly fills keeps
// its buffer instead of reallocating every cycle. Idle sources are
// forgotten as new ones appear.
//
// # Subscriptions
//
// Subscribe routes the messages of some sources (or of every source) to a
// Subscriber instead of the queues. The messages already queued from those
// sources are flushed to the subscriber first, so it sees each source's
// messages in push order. Several matching subscriptions each get every
// message. Cancelling a subscription makes its sources' messages queue
// again.
//
//	cancel := ib.Subscribe(mailbox.SubscriberFunc(func(m peer.Message) {
//		handle(m) // must not block for long
//	}), "a")
//	defer cancel()
//
// Deliver runs on the pushing goroutine with no lock held, never
// concurrently for one source. Routed messages bypass the queues and their
// capacity, so a slow subscriber slows the pushing connection directly.
// Messages routed before cancel are still delivered, possibly just after
// cancel returns; none is lost.
//
// Take hands the waiting messages of one source, one at a time, to a
// function that may fail, removing each only once the function accepted
// it; this is how messages are forwarded to another peer without losing
// any when sending fails:
//
//	n, err := ib.Take(from, func(m peer.Message) error {
//		return other.Send(m) // on error, m stays queued
//	})
//
// # Concurrency
//
// Every Inbox method is safe for concurrent use by any number of
// goroutines. Typically one goroutine per source calls Push (which keeps
// that source strictly FIFO), while any number of goroutines call
// Receive, TryReceive, Len, Sources, Take, Subscribe and Close. Each
// message is handed out exactly once: to one Receive or TryReceive, to one
// successful call of a Take function, or to every matching subscription.
//
// While a Take runs, its source is held: receivers skip that source's
// messages, and a Subscribe covering it or another Take of it waits.
//
// Blocking calls never hold the lock while waiting: Receive waits on a
// notification channel and honors its context, Push waits per source and
// honors its done channel. When messages arrive, every blocked Receive
// wakes and those whose sources still have nothing wait again, so many
// receivers with disjoint filters pay for each other's wake-ups. Close
// wakes them all; afterwards Push, Receive and Take return ErrClosed and
// waiting messages are discarded.
package mailbox
