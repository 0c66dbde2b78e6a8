package mailbox

import (
	"context"
	"fmt"
	"testing"

	"github.com/slc-go/slc/peer"
)

// benchBatch returns a batch of n messages from source from with small
// payloads.
func benchBatch(from peer.ID, n int) []peer.Message {
	raw := make([]byte, 32)
	b := make([]peer.Message, n)
	for i := range b {
		b[i] = peer.Message{From: from, ID: peer.MsgID(i), Raw: raw}
	}
	return b
}

// BenchmarkPushReceive pushes batches of 64 and receives each message, on
// one goroutine. One op is one message pushed and received.
func BenchmarkPushReceive(b *testing.B) {
	ib := New(Config{})
	defer ib.Close()
	batch := benchBatch("a", 64)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i += len(batch) {
		if _, err := ib.Push(nil, "a", batch); err != nil {
			b.Fatal(err)
		}
		for range batch {
			if _, err := ib.Receive(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkProducerConsumer runs one pushing goroutine (batches of 64)
// against one receiving goroutine, with the default capacity and with a
// small one that makes the producer block. One op is one message.
func BenchmarkProducerConsumer(b *testing.B) {
	for _, max := range []int{0, 256} {
		b.Run(fmt.Sprint("maxMessages=", max), func(b *testing.B) {
			ib := New(Config{MaxMessages: max})
			defer ib.Close()
			batch := benchBatch("a", 64)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for sent := 0; sent < b.N; {
					k := min(len(batch), b.N-sent)
					n, err := ib.Push(nil, "a", batch[:k])
					if err != nil {
						return
					}
					sent += n
				}
			}()
			for range b.N {
				if _, err := ib.Receive(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReceive100Sources measures receiving with 100 sources that all
// have messages waiting: unfiltered, filtered by one source, and filtered
// by all 100. One op is one message pushed (in batches of 64 per source)
// and received.
func BenchmarkReceive100Sources(b *testing.B) {
	const sources = 100
	ids := make([]peer.ID, sources)
	batches := make([][]peer.Message, sources)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprint("peer-", i))
		batches[i] = benchBatch(ids[i], 64)
	}
	for _, bc := range []struct {
		name string
		from func(i int) []peer.ID
	}{
		{"unfiltered", func(int) []peer.ID { return nil }},
		{"filter=1", func(i int) []peer.ID { return ids[i%sources : i%sources+1] }},
		{"filter=100", func(int) []peer.ID { return ids }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ib := New(Config{})
			defer ib.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; i < b.N; {
				for s := range ids {
					ib.Push(nil, ids[s], batches[s])
				}
				for range sources * 64 {
					// Filter by one source: drain the sources in turn.
					if _, err := ib.Receive(ctx, bc.from(i/64)...); err != nil {
						b.Fatal(err)
					}
					i++
				}
			}
		})
	}
}

// BenchmarkPushSubscribed pushes batches of 64 to a subscription. One op
// is one message delivered.
func BenchmarkPushSubscribed(b *testing.B) {
	ib := New(Config{})
	defer ib.Close()
	delivered := 0
	cancel := ib.Subscribe(SubscriberFunc(func(peer.Message) { delivered++ }))
	defer cancel()
	batch := benchBatch("a", 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i += len(batch) {
		ib.Push(nil, "a", batch)
	}
	if delivered == 0 {
		b.Fatal("nothing delivered")
	}
}
