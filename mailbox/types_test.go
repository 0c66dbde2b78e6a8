package mailbox_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc/mailbox"
	"github.com/slc-go/slc/peer"
)

// typed returns message n from source a with type t.
func typed(n int, t string) peer.Message {
	return peer.Message{From: "a", ID: peer.MsgID(n), Type: t, Raw: []byte{byte(n)}}
}

type collector struct {
	mu  sync.Mutex
	got []peer.Message
}

func (c *collector) Deliver(m peer.Message) {
	c.mu.Lock()
	c.got = append(c.got, m)
	c.mu.Unlock()
}

func (c *collector) ids() []peer.MsgID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]peer.MsgID, len(c.got))
	for i, m := range c.got {
		out[i] = m.ID
	}
	return out
}

// Messages of subscribed types go to the subscriber in order; the rest
// queue for Receive in order; a mixed batch is split accordingly.
func TestSubscribeTypesSplitsBatches(t *testing.T) {
	ib := mailbox.New(mailbox.Config{})
	defer ib.Close()
	rpc := &collector{}
	cancel := ib.SubscribeTypes(rpc, "rpc.Call", "rpc.Reply")
	batch := []peer.Message{typed(1, "app"), typed(2, "rpc.Call"), typed(3, "rpc.Reply"), typed(4, ""), typed(5, "rpc.Call"), typed(6, "app")}
	if n, err := ib.Push(nil, "a", batch); n != 6 || err != nil {
		t.Fatalf("Push = %d, %v", n, err)
	}
	if got := fmt.Sprint(rpc.ids()); got != "[2 3 5]" {
		t.Fatalf("subscriber got %s; want [2 3 5]", got)
	}
	var queued []peer.MsgID
	for {
		m, ok := ib.TryReceive()
		if !ok {
			break
		}
		queued = append(queued, m.ID)
	}
	if got := fmt.Sprint(queued); got != "[1 4 6]" {
		t.Fatalf("queue holds %s; want [1 4 6]", got)
	}
	cancel()
	cancel() // idempotent
	ib.Push(nil, "a", []peer.Message{typed(7, "rpc.Call")})
	if m, ok := ib.TryReceive(); !ok || m.ID != 7 {
		t.Fatalf("after cancel the typed message should queue; got %+v, %v", m, ok)
	}
	if len(rpc.ids()) != 3 {
		t.Fatalf("cancelled subscriber still got messages: %v", rpc.ids())
	}
}

// Type routing wins over a per-source subscription; each subscription for
// a type gets every message of it; "" never matches.
func TestSubscribeTypesWithSourceSubscriptions(t *testing.T) {
	ib := mailbox.New(mailbox.Config{})
	defer ib.Close()
	src, t1, t2 := &collector{}, &collector{}, &collector{}
	defer ib.Subscribe(src, "a")()
	defer ib.SubscribeTypes(t1, "x")()
	defer ib.SubscribeTypes(t2, "x", "")()
	ib.Push(nil, "a", []peer.Message{typed(1, "x"), typed(2, "y"), typed(3, ""), typed(4, "x")})
	if got := fmt.Sprint(t1.ids(), t2.ids(), src.ids()); got != "[1 4] [1 4] [2 3]" {
		t.Fatalf("routing = %s; want [1 4] [1 4] [2 3]", got)
	}
}

// Typed messages are not held back by a full queue of other messages from
// the same source, and do not count against its capacity.
func TestSubscribeTypesBypassCapacity(t *testing.T) {
	ib := mailbox.New(mailbox.Config{MaxMessages: 1})
	defer ib.Close()
	rpc := &collector{}
	defer ib.SubscribeTypes(rpc, "rpc.Reply")()
	ib.Push(nil, "a", []peer.Message{typed(1, "app")}) // the queue is now full
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := ib.Push(ctx.Done(), "a", []peer.Message{typed(2, "rpc.Reply"), typed(3, "rpc.Reply")}); n != 2 || err != nil {
		t.Fatalf("typed Push into a full queue = %d, %v", n, err)
	}
	if got := fmt.Sprint(rpc.ids()); got != "[2 3]" {
		t.Fatalf("subscriber got %s", got)
	}
	if ib.Len() != 1 {
		t.Fatalf("queue holds %d messages; want 1", ib.Len())
	}
}

// Under concurrent pushes from several sources, each source's typed
// messages reach the subscriber exactly once, in order.
func TestSubscribeTypesConcurrent(t *testing.T) {
	ib := mailbox.New(mailbox.Config{})
	defer ib.Close()
	var mu sync.Mutex
	last := map[peer.ID]peer.MsgID{}
	count := 0
	defer ib.SubscribeTypes(mailbox.SubscriberFunc(func(m peer.Message) {
		mu.Lock()
		defer mu.Unlock()
		if m.ID <= last[m.From] {
			t.Errorf("source %s: message %d after %d", m.From, m.ID, last[m.From])
		}
		last[m.From] = m.ID
		count++
	}), "t")()
	var wg sync.WaitGroup
	const sources, per = 4, 2000
	for s := 0; s < sources; s++ {
		wg.Add(1)
		go func(id peer.ID) {
			defer wg.Done()
			for i := 1; i <= per; i += 2 {
				ib.Push(nil, id, []peer.Message{
					{From: id, ID: peer.MsgID(i), Type: "t"},
					{From: id, ID: peer.MsgID(i + 1), Type: "other"},
				})
			}
		}(peer.ID(fmt.Sprint("s", s)))
	}
	wg.Wait()
	if count != sources*per/2 {
		t.Fatalf("subscriber got %d typed messages; want %d", count, sources*per/2)
	}
	if ib.Len() != sources*per/2 {
		t.Fatalf("queue holds %d; want %d", ib.Len(), sources*per/2)
	}
}
