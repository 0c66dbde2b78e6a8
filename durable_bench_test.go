package slc_test

import (
	"context"
	"sync"
	"testing"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/store"
)

// durablePair is benchPair with a store on each node.
func durablePair(b *testing.B, o store.Options) (rx, tx *slc.Communicator, to slc.PeerID) {
	b.Helper()
	ctx := context.Background()
	node := func(name string) *slc.Communicator {
		c, err := slc.New(slc.WithName(name), slc.WithStore(b.TempDir()), slc.WithStoreOptions(o))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	rx, tx = node("rx"), node("tx")
	addr, err := rx.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if to, err = tx.Connect(ctx, addr.String()); err != nil {
		b.Fatal(err)
	}
	return rx, tx, to
}

// BenchmarkDurable64 sends typed 64-byte messages between two nodes that
// both keep a store (fsync per group commit) until the last one is
// acknowledged, and reports the fsyncs per message of both sides
// together. senders is the number of goroutines calling Send: when Send
// waits for its commit, group commit shares one fsync among the messages
// that arrive while the previous commit runs.
func BenchmarkDurable64(b *testing.B) {
	for _, c := range []struct {
		name    string
		opts    store.Options
		senders int
	}{
		{"waits/senders=1", store.Options{}, 1},
		{"waits/senders=64", store.Options{}, 64},
		{"queued/senders=1", store.Options{SendQueues: true}, 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			rx, tx, to := durablePair(b, c.opts)
			syncs0 := rx.Store().Stats().Syncs + tx.Store().Stats().Syncs
			b.SetBytes(64)
			b.ReportAllocs()
			b.ResetTimer()
			done := receiveN(b, rx, b.N)
			ctx := context.Background()
			var wg sync.WaitGroup
			var mu sync.Mutex
			var last slc.MsgID
			per := (b.N + c.senders - 1) / c.senders
			for g := range c.senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := Small{Sensor: "sensor-0001", Value: 21.5, Note: "0123456789abcdef0123456789abcdef"}
					for i := g * per; i < min(b.N, (g+1)*per); i++ {
						msg.Seq = uint64(i)
						id, err := tx.Send(ctx, msg, to)
						if err != nil {
							b.Error(err)
							return
						}
						mu.Lock()
						last = max(last, id)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if err := tx.WaitAcknowledged(ctx, last, to); err != nil {
				b.Fatal(err)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			syncs := rx.Store().Stats().Syncs + tx.Store().Stats().Syncs - syncs0
			b.ReportMetric(float64(syncs)/float64(b.N), "fsyncs/msg")
		})
	}
}
