package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/wire"
)

// sentFrame is a DATA frame as the remote would see it.
type sentFrame struct {
	flags uint8
	wire.Data
}

// sentFrames drains s's log as its writer would and parses the frames.
func sentFrames(t testing.TB, s *Session) []sentFrame {
	t.Helper()
	fs, rest := parseFrames(t, drain(s.out))
	if len(rest) != 0 {
		t.Fatalf("%d bytes of a partial frame in the log", len(rest))
	}
	out := make([]sentFrame, len(fs))
	for i, f := range fs {
		out[i] = sentFrame{flags: f.Flags, Data: mustData(t, f)}
	}
	return out
}

func rawMsg(body []byte) *Outgoing { return &Outgoing{Serializer: codec.Raw, Body: body} }

// TestSendIDsOrdered runs concurrent senders to overlapping, randomly
// ordered target sets, with a small BufferCap so they block, while a
// writer per session drains its log and acknowledges (ACK and PROGRESS).
// Every session must see strictly increasing IDs, chunks of a message
// contiguous, and exactly the messages sent to it.
func TestSendIDsOrdered(t *testing.T) {
	const sessions, senders, perSender = 4, 8, 150
	cfg := testConfig(t, "a", func(c *Config) {
		c.BufferCap = 8 << 10
		c.ChunkSize = 1024
	})
	ss := make([]*Session, sessions)
	for i := range ss {
		ss[i] = newSession(cfg, fmt.Sprintf("peer%d", i))
	}
	ids := cfg.IDs

	// The writers.
	stop := make(chan struct{})
	seen := make([][]uint64, sessions)
	var pumps sync.WaitGroup
	for i, s := range ss {
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			seen[i] = pump(t, s, stop)
		}()
	}

	var mu sync.Mutex
	want := make([][]uint64, sessions)
	var senderWG sync.WaitGroup
	for g := 0; g < senders; g++ {
		senderWG.Add(1)
		go func() {
			defer senderWG.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			for n := 0; n < perSender; n++ {
				perm := rng.Perm(sessions)[:1+rng.Intn(sessions)]
				targets := make([]*Session, len(perm))
				for i, p := range perm {
					targets[i] = ss[p]
				}
				size := rng.Intn(1500)
				if rng.Intn(10) == 0 {
					size = 4000 + rng.Intn(2000) // chunked
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				id, err := Send(ctx, targets, ids, rawMsg(make([]byte, size)))
				cancel()
				if err != nil {
					t.Errorf("send: %v", err)
					return
				}
				mu.Lock()
				for _, p := range perm {
					want[p] = append(want[p], uint64(id))
				}
				mu.Unlock()
			}
		}()
	}
	senderWG.Wait()
	close(stop)
	pumps.Wait()
	for i := range ss {
		slices.Sort(want[i])
		if !slices.IsSorted(seen[i]) || !slices.Equal(seen[i], want[i]) {
			t.Errorf("session %d: the writer saw %d messages (sorted %v), %d were sent to it",
				i, len(seen[i]), slices.IsSorted(seen[i]), len(want[i]))
		}
		if st := ss[i].Stats(); st.Unacked != 0 || st.LastSent != st.Acked {
			t.Errorf("session %d: stats %+v after everything was acknowledged", i, st)
		}
	}
	if got := ids.Load(); got != senders*perSender {
		t.Errorf("%d IDs taken for %d sends", got, senders*perSender)
	}
}

// pump is a session's writer and remote in one: it takes what the log
// hands out, parses it, and acknowledges complete messages (ACK) and the
// chunks of a partial one (PROGRESS). It returns the IDs of the complete
// messages in the order they came.
func pump(t *testing.T, s *Session, stop <-chan struct{}) []uint64 {
	var buf []byte
	var got []uint64
	var cur uint64 // message being chunked
	var chunks uint64
	final := false
	for {
		bufs, ok := s.out.take(nil, 32<<10)
		if !ok {
			if final {
				return got
			}
			select {
			case <-s.out.kick:
			case <-stop:
				final = true
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		buf = append(buf, concat(bufs)...)
		s.out.wrote()
		for len(buf) >= wire.HeaderLen {
			h, err := wire.ParseHeader(buf, wire.MaxVersion, wire.MaxFrameLimit)
			if err != nil {
				t.Errorf("bad frame: %v", err)
				return got
			}
			n := wire.HeaderLen + int(h.Length)
			if len(buf) < n {
				break
			}
			d, err := wire.ParseData(buf[wire.HeaderLen:n])
			if err != nil {
				t.Errorf("bad DATA: %v", err)
				return got
			}
			buf = buf[n:]
			if cur != 0 && d.Seq != cur {
				t.Errorf("message %d interleaved with the chunks of %d", d.Seq, cur)
				return got
			}
			if len(got) > 0 && cur == 0 && d.Seq <= got[len(got)-1] {
				t.Errorf("message %d after %d", d.Seq, got[len(got)-1])
				return got
			}
			if h.Flags&wire.FlagMore != 0 {
				cur = d.Seq
				chunks++
				if _, err := s.out.progress(cur, chunks); err != nil {
					t.Errorf("progress(%d, %d): %v", cur, chunks, err)
					return got
				}
				continue
			}
			cur, chunks = 0, 0
			got = append(got, d.Seq)
			if _, err := s.out.ack(d.Seq); err != nil {
				t.Errorf("ack(%d): %v", d.Seq, err)
				return got
			}
		}
		buf = slices.Clone(buf)
	}
}

func TestSendBufferCap(t *testing.T) {
	cfg := testConfig(t, "a", func(c *Config) { c.BufferCap = 10000 })
	s := newSession(cfg, "b")
	ids := cfg.IDs
	ctx := context.Background()
	body := make([]byte, 3000)
	for i := 0; i < 4; i++ { // 4 x 3019 bytes: the fourth starts below the cap
		if _, err := Send(ctx, []*Session{s}, ids, rawMsg(body)); err != nil {
			t.Fatal(err)
		}
	}
	drain(s.out)

	// Over the cap: Send waits, and gives up when its context ends.
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Send(short, []*Session{s}, ids, rawMsg(body))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send over the cap = %v, want the context's error", err)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("send over the cap did not wait")
	}
	if ids.Load() != 4 || s.Stats().LastSent != 4 {
		t.Fatalf("a send that gave up took ID %d / queued %d", ids.Load(), s.Stats().LastSent)
	}

	// Acknowledgements free room: a waiting Send resumes.
	done := make(chan error, 1)
	go func() {
		_, err := Send(ctx, []*Session{s}, ids, rawMsg(body))
		done <- err
	}()
	waitBlocked(t, s.out)
	select {
	case err := <-done:
		t.Fatalf("send returned while over the cap: %v", err)
	default:
	}
	s.out.ack(2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.LastSent != 5 || st.Acked != 2 {
		t.Fatalf("stats %+v", st)
	}

	// The session ends while a Send waits: it fails with the reason.
	if _, err := Send(ctx, []*Session{s}, ids, rawMsg(body)); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := Send(ctx, []*Session{s}, ids, rawMsg(body))
		done <- err
	}()
	waitBlocked(t, s.out)
	s.End(ErrPeerLost)
	err = <-done
	var pe *PeerError
	if !errors.Is(err, ErrPeerLost) || !errors.As(err, &pe) || pe.Peer != "b" {
		t.Fatalf("send on an ended session = %v, want a PeerError for b wrapping ErrPeerLost", err)
	}
}

func TestSendChunks(t *testing.T) {
	cfg := testConfig(t, "a", func(c *Config) { c.ChunkSize = 1024 })
	s := newSession(cfg, "b")
	ids := cfg.IDs
	for _, size := range []int{0, 1, 1024, 1025, 2048, 3500} {
		body := make([]byte, size)
		rand.New(rand.NewSource(int64(size))).Read(body)
		id, err := Send(context.Background(), []*Session{s}, ids, &Outgoing{Serializer: codec.Msgpack, Type: "demo.T", Body: body})
		if err != nil {
			t.Fatal(err)
		}
		fs := sentFrames(t, s)
		wantFrames := max(1, (size+1023)/1024)
		if len(fs) != wantFrames {
			t.Fatalf("%d bytes in %d frames, want %d", size, len(fs), wantFrames)
		}
		var got []byte
		for i, f := range fs {
			more := f.flags&wire.FlagMore != 0
			if more != (i < len(fs)-1) || f.flags&wire.FlagAbort != 0 {
				t.Fatalf("%d bytes: frame %d has flags %#x", size, i, f.flags)
			}
			if f.Seq != uint64(id) || string(f.Type) != "demo.T" || f.Serializer != uint8(codec.Msgpack) || f.Compressor != 0 {
				t.Fatalf("%d bytes: frame %d is %+v", size, i, f.Data)
			}
			if len(f.Body) > 1024 {
				t.Fatalf("chunk of %d bytes with ChunkSize 1024", len(f.Body))
			}
			got = append(got, f.Body...)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("%d bytes: the chunks do not add up to the body", size)
		}
	}
}

// TestSendAbortBetweenChunks ends the sender's context while it waits for
// room between two chunks: the message is closed with a FlagAbort frame,
// reported failed, and the error is the context's.
func TestSendAbortBetweenChunks(t *testing.T) {
	cfg := testConfig(t, "a", func(c *Config) {
		c.ChunkSize = 1024
		c.BufferCap = 2500
	})
	s := newSession(cfg, "b")
	ids := cfg.IDs
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Send(ctx, []*Session{s}, ids, rawMsg(make([]byte, 10*1024)))
		done <- err
	}()
	waitBlocked(t, s.out)
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("send = %v, want context.Canceled", err)
	}
	if errors.Is(err, ErrPeerLost) {
		t.Fatalf("send reports the peer lost when the caller gave up: %v", err)
	}
	fs := sentFrames(t, s)
	if len(fs) < 2 {
		t.Fatalf("%d frames", len(fs))
	}
	lastF := fs[len(fs)-1]
	if lastF.flags&wire.FlagAbort == 0 || len(lastF.Body) != 0 || lastF.Seq != 1 {
		t.Fatalf("last frame %+v flags %#x, want an empty FlagAbort frame for message 1", lastF.Data, lastF.flags)
	}
	for _, f := range fs[:len(fs)-1] {
		if f.flags != wire.FlagMore || f.Seq != 1 {
			t.Fatalf("frame before the abort: flags %#x seq %d", f.flags, f.Seq)
		}
	}
	if acked, pending, failed := s.AckStatus(1); acked || pending || !failed {
		t.Fatalf("AckStatus of an aborted message = %v %v %v, want failed", acked, pending, failed)
	}
	// The session goes on: the remote acknowledges the abort.
	s.out.ack(1)
	if _, err := Send(context.Background(), []*Session{s}, ids, rawMsg([]byte("next"))); err != nil {
		t.Fatal(err)
	}
}

// TestSendAbortOneTarget: one target blocks between chunks until the
// context ends, the other has room. The message reaches the second whole
// and the error lists the first with the context's error.
func TestSendAbortOneTarget(t *testing.T) {
	cfg := testConfig(t, "a", func(c *Config) {
		c.ChunkSize = 1024
		c.BufferCap = 20000
	})
	slow, fast := newSession(cfg, "slow"), newSession(cfg, "fast")
	ids := cfg.IDs
	// slow's remote acknowledges nothing: it is close to its cap.
	if _, err := Send(context.Background(), []*Session{slow}, ids, rawMsg(make([]byte, 17000))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		id  MsgID
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, err := Send(ctx, []*Session{slow, fast}, ids, rawMsg(make([]byte, 8*1024)))
		done <- result{id, err}
	}()
	waitBlocked(t, slow.out)
	cancel()
	res := <-done
	var se *SendError
	if !errors.As(res.err, &se) || res.id != 2 || se.ID != 2 {
		t.Fatalf("send = %d, %v; want a partial failure with ID 2", res.id, res.err)
	}
	if len(se.Failed) != 1 || se.Failed[0].Peer != "slow" || !errors.Is(se.Failed[0], context.Canceled) {
		t.Fatalf("failures %v, want slow with the context's error", se.Failed)
	}
	if _, _, failed := slow.AckStatus(2); !failed {
		t.Fatal("the message is not failed on the slow session")
	}
	var got []byte
	for _, f := range sentFrames(t, fast) {
		if f.flags&wire.FlagAbort != 0 {
			t.Fatal("the fast session got an abort")
		}
		got = append(got, f.Body...)
	}
	if len(got) != 8*1024 {
		t.Fatalf("the fast session got %d bytes of the message", len(got))
	}
}

func TestSendCompression(t *testing.T) {
	cfg := testConfig(t, "a", func(c *Config) {
		c.Compressor = codec.S2
		c.CompressMin = 1024
		c.ChunkSize = 16 << 10
	})
	s := newSession(cfg, "b")
	ids := cfg.IDs
	random := make([]byte, 8000)
	rand.New(rand.NewSource(1)).Read(random)
	s2, _ := codec.CompressorByID(codec.S2)
	for _, tc := range []struct {
		name       string
		body       []byte
		compressed bool
	}{
		{"compressible", bytes.Repeat([]byte("abcd"), 2000), true},
		{"incompressible", random, false},
		{"below the threshold", bytes.Repeat([]byte{0}, 1000), false},
		{"chunked, compressible", bytes.Repeat([]byte("xyz."), 10000), true},
	} {
		if _, err := Send(context.Background(), []*Session{s}, ids, rawMsg(tc.body)); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for _, f := range sentFrames(t, s) {
			body := f.Body
			switch f.Compressor {
			case 0:
				if tc.compressed {
					t.Errorf("%s: a chunk of %d bytes went uncompressed", tc.name, len(f.Body))
				}
			case uint8(codec.S2):
				if !tc.compressed {
					t.Errorf("%s: a chunk went compressed", tc.name)
				}
				out, err := s2.Decompress(nil, f.Body, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				if len(f.Body) >= len(out) {
					t.Errorf("%s: compressed %d bytes to %d", tc.name, len(out), len(f.Body))
				}
				body = out
			default:
				t.Fatalf("compressor %d", f.Compressor)
			}
			got = append(got, body...)
		}
		if !bytes.Equal(got, tc.body) {
			t.Errorf("%s: the frames do not carry the body", tc.name)
		}
	}
}

func TestSendTooLarge(t *testing.T) {
	cfg := testConfig(t, "a")
	s := newSession(cfg, "b")
	s.maxMessage.Store(1000) // what the remote's hello announced
	ids := cfg.IDs
	if _, err := Send(context.Background(), []*Session{s}, ids, rawMsg(make([]byte, 1000))); err != nil {
		t.Fatalf("a message of exactly the remote's maximum: %v", err)
	}
	_, err := Send(context.Background(), []*Session{s}, ids, rawMsg(make([]byte, 1001)))
	var pe *PeerError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) || pe.Peer != "b" {
		t.Fatalf("send over the remote's maximum = %v, want a PeerError wrapping ErrTooLarge", err)
	}
	if ids.Load() != 1 || s.Stats().LastSent != 1 {
		t.Fatal("a message refused as too large took an ID or was queued")
	}

	// With several targets, one that accepts less refuses the message for
	// all: nothing is queued anywhere.
	other := newSession(cfg, "c")
	_, err = Send(context.Background(), []*Session{other, s}, ids, rawMsg(make([]byte, 1001)))
	if !errors.Is(err, ErrTooLarge) || other.Stats().LastSent != 0 {
		t.Fatalf("multi-target send over one target's maximum = %v, queued %d elsewhere", err, other.Stats().LastSent)
	}
}

func TestSendNoTargets(t *testing.T) {
	ids := new(atomic.Uint64)
	if _, err := Send(context.Background(), nil, ids, rawMsg(nil)); !errors.Is(err, ErrNoPeers) {
		t.Fatalf("send to nobody = %v", err)
	}
}

// TestSendLockOrder sends to the same two sessions in both orders from
// many goroutines at once while one of them is over its BufferCap: with
// the sessions locked in a consistent order this cannot deadlock.
func TestSendLockOrder(t *testing.T) {
	cfg := testConfig(t, "a", func(c *Config) { c.BufferCap = 4096 })
	x, y := newSession(cfg, "x"), newSession(cfg, "y")
	ids := cfg.IDs
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var acker sync.WaitGroup
	acker.Add(1)
	go func() {
		defer acker.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			for _, s := range []*Session{x, y} {
				drain(s.out)
				if last := s.out.lastSeq(); last > 0 {
					s.out.ack(last)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 200; n++ {
				targets := []*Session{x, y}
				if (g+n)%2 == 1 {
					targets = []*Session{y, x}
				}
				if _, err := Send(ctx, targets, ids, rawMsg(make([]byte, 500))); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	acker.Wait()
	if ids.Load() != 16*200 {
		t.Fatalf("%d sends completed", ids.Load())
	}
}
