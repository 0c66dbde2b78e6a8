package slc_test

import (
	"context"
	"testing"

	"github.com/slc-go/slc"
)

// Small is a typed message whose msgpack body is about 64 bytes.
type Small struct {
	Seq    uint64
	Sensor string
	Value  float64
	Note   string
}

func init() { slc.Register[Small]("bench.Small") }

func benchPair(b *testing.B, opts ...slc.Option) (rx, tx *slc.Communicator, to slc.PeerID) {
	b.Helper()
	ctx := context.Background()
	rx, err := slc.New(append([]slc.Option{slc.WithName("rx")}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rx.Close() })
	tx, err = slc.New(append([]slc.Option{slc.WithName("tx")}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tx.Close() })
	addr, err := rx.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	to, err = tx.Connect(ctx, addr.String())
	if err != nil {
		b.Fatal(err)
	}
	return rx, tx, to
}

// receiveN receives n messages on its own goroutine and reports when done.
// It releases each message, as a consumer that is done with it should.
func receiveN(b *testing.B, rx *slc.Communicator, n int) <-chan error {
	return receiveRelease(b, rx, n, true)
}

func receiveRelease(b *testing.B, rx *slc.Communicator, n int, release bool) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := 0; i < n; i++ {
			m, err := rx.Receive(ctx)
			if err != nil {
				done <- err
				return
			}
			if release {
				m.Release()
			}
		}
		done <- nil
	}()
	return done
}

// BenchmarkSendReceiveTyped64 sends typed 64-byte messages one way over
// loopback TCP and receives them: throughput of the whole path.
func BenchmarkSendReceiveTyped64(b *testing.B) {
	rx, tx, to := benchPair(b)
	msg := Small{Sensor: "sensor-0001", Value: 21.5, Note: "0123456789abcdef0123456789abcdef"}
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	done := receiveN(b, rx, b.N)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		msg.Seq = uint64(i)
		if _, err := tx.Send(ctx, msg, to); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSendReceiveRaw64 is the same with 64-byte raw payloads.
func BenchmarkSendReceiveRaw64(b *testing.B) {
	benchRaw(b, 64)
}

// BenchmarkSendReceiveRaw1MiB sends 1 MiB raw payloads; the receiver
// releases each message's buffer.
func BenchmarkSendReceiveRaw1MiB(b *testing.B) {
	benchRaw(b, 1<<20)
}

// BenchmarkSendReceiveRaw1MiBKept is the same with a receiver that keeps
// every buffer (no Message.Release): a fresh buffer per message.
func BenchmarkSendReceiveRaw1MiBKept(b *testing.B) {
	benchRawRelease(b, 1<<20, false)
}

func benchRaw(b *testing.B, size int) { benchRawRelease(b, size, true) }

func benchRawRelease(b *testing.B, size int, release bool) {
	rx, tx, to := benchPair(b)
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	done := receiveRelease(b, rx, b.N, release)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, err := tx.SendRaw(ctx, payload, to); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSendAcked64 waits for each typed message's acknowledgement: the
// round trip of a blocking, serpy-style send.
func BenchmarkSendAcked64(b *testing.B) {
	rx, tx, to := benchPair(b)
	msg := Small{Sensor: "sensor-0001", Value: 21.5, Note: "0123456789abcdef0123456789abcdef"}
	b.ReportAllocs()
	b.ResetTimer()
	done := receiveN(b, rx, b.N)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		id, err := tx.Send(ctx, msg, to)
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.WaitAcknowledged(ctx, id, to); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEcho64 is a request/echo round trip of a typed 64-byte
// message: one op is one round trip.
func BenchmarkEcho64(b *testing.B) {
	rx, tx, to := benchPair(b)
	msg := Small{Sensor: "sensor-0001", Value: 21.5, Note: "0123456789abcdef0123456789abcdef"}
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			m, err := rx.Receive(ctx)
			if err != nil {
				done <- err
				return
			}
			if _, err := rx.Send(ctx, m.Body, m.From); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tx.Send(ctx, msg, to); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Receive(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
