package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
)

func msgpackOf(t testing.TB, v any) []byte {
	t.Helper()
	s, _ := codec.SerializerByID(codec.Msgpack)
	b, err := s.Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectAck reads frames until an ACK for at least seq.
func (r *remote) expectAck(seq uint64) {
	r.t.Helper()
	for {
		h, p := r.next()
		if h.Type != wire.TypeAck {
			if h.Type == wire.TypeData || h.Type == wire.TypeGoodbye {
				r.t.Fatalf("got %s while waiting for ACK %d", wire.TypeName(h.Type), seq)
			}
			continue
		}
		if n, err := wire.ParseAck(p); err != nil || n >= seq {
			if err != nil || n != seq {
				r.t.Fatalf("ACK %d (%v), want %d", n, err, seq)
			}
			return
		}
	}
}

// dataFrames reads n DATA frames, skipping control frames.
func (r *remote) dataFrames(n int) []sentFrame {
	r.t.Helper()
	var out []sentFrame
	for len(out) < n {
		h, p := r.next()
		if h.Type != wire.TypeData {
			if h.Type == wire.TypeGoodbye {
				r.t.Fatalf("GOODBYE while waiting for DATA")
			}
			continue
		}
		d, err := wire.ParseData(p)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, sentFrame{flags: h.Flags, Data: d})
	}
	return out
}

func TestConnDelivers(t *testing.T) {
	cfg := testConfig(t, "local")
	h := serve(t, newSession(cfg, "remote"), remoteHello("remote"))
	ours := h.up(0)
	if ours.Instance != instanceOf("remote") || ours.Delivered != 0 || ours.Partial != 0 {
		t.Fatalf("our RESUME %+v", ours)
	}
	h.r.send(
		data(1, 0, uint8(codec.Msgpack), 0, "", msgpackOf(t, map[string]any{"k": "v"})),
		data(2, 0, uint8(codec.Raw), 0, "", []byte("raw bytes")),
	)
	msgs := sinkOf(cfg).waitN(t, 2)
	if m := msgs[0]; m.From != "remote" || m.ID != 1 || m.Err != nil || m.Serializer != codec.Msgpack {
		t.Fatalf("first message %+v", m)
	}
	if body, ok := msgs[0].Body.(map[string]any); !ok || body["k"] != "v" {
		t.Fatalf("decoded body %#v", msgs[0].Body)
	}
	if m := msgs[1]; m.ID != 2 || string(m.Raw) != "raw bytes" || m.Serializer != codec.Raw {
		t.Fatalf("second message %+v", m)
	}
	h.r.expectAck(2)
	if st := h.s.Stats(); st.Delivered != 2 || st.Duplicates != 0 {
		t.Fatalf("stats %+v", st)
	}
	h.noDown()
}

func TestConnChunkedDelivery(t *testing.T) {
	cfg := testConfig(t, "local")
	h := serve(t, newSession(cfg, "remote"), remoteHello("remote"))
	h.up(0)
	body := make([]byte, 3000)
	rand.New(rand.NewSource(3)).Read(body)
	h.r.send(
		data(5, wire.FlagMore, 0, 0, "blob", body[:1000]),
		data(5, wire.FlagMore, 0, 0, "blob", body[1000:2000]),
	)
	// The chunks held are reported with PROGRESS before the message is
	// complete, so the sender can release them.
	for {
		hd, p := h.r.next()
		if hd.Type != wire.TypeProgress {
			continue
		}
		pr, err := wire.ParseProgress(p)
		if err != nil || pr.Seq != 5 {
			t.Fatalf("PROGRESS %+v, %v", pr, err)
		}
		if pr.Chunks == 2 {
			break
		}
	}
	if n := len(sinkOf(cfg).all()); n != 0 {
		t.Fatalf("%d messages delivered before the last chunk", n)
	}
	h.r.send(data(5, 0, 0, 0, "blob", body[2000:]))
	m := sinkOf(cfg).waitN(t, 1)[0]
	if m.ID != 5 || m.Type != "blob" || !bytes.Equal(m.Raw, body) {
		t.Fatalf("reassembled %d bytes of type %q, id %d", len(m.Raw), m.Type, m.ID)
	}
	h.r.expectAck(5)
}

// TestConnViolations: each case sends something a peer must not, after
// the RESUME exchange. This side answers with a GOODBYE carrying the code
// and reports the connection down with the same error.
func TestConnViolations(t *testing.T) {
	bomb := func(id codec.ID) []byte {
		c, _ := codec.CompressorByID(id)
		b, err := c.Compress(nil, make([]byte, 8<<20))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	garbageS2 := []byte{0x0a, 0xff, 0xff, 0xff, 0xff} // 10 bytes, then no valid block
	for _, tc := range []struct {
		name  string
		hello func(*wire.Hello)
		send  [][]byte
		code  wire.Code
	}{
		{name: "DATA interleaved in a chunked message", code: wire.CodeSequence, send: [][]byte{
			data(5, wire.FlagMore, 1, 0, "", []byte("a")),
			data(6, 0, 1, 0, "", []byte{0xc0}),
		}},
		{name: "serializer changes between chunks", code: wire.CodeSequence, send: [][]byte{
			data(5, wire.FlagMore, 1, 0, "", []byte("a")),
			data(5, 0, 0, 0, "", []byte("b")),
		}},
		{name: "DATA with sequence number 0", code: wire.CodeSequence, send: [][]byte{data(0, 0, 0, 0, "", nil)}},
		{name: "type name not UTF-8", code: wire.CodeMalformed, send: [][]byte{data(1, 0, 0, 0, "\xff\xfe", nil)}},
		{name: "type name not UTF-8 after a valid one", code: wire.CodeMalformed, send: [][]byte{
			data(1, 0, 0, 0, "app.T", []byte{0xc0}),
			data(2, 0, 0, 0, "app.T", []byte{0xc0}),
			data(3, 0, 0, 0, "app.T\xff", []byte{0xc0}),
		}},
		{name: "type name not UTF-8 in a re-sent message", code: wire.CodeMalformed, send: [][]byte{
			data(1, 0, 0, 0, "app.T", []byte{0xc0}),
			data(1, 0, 0, 0, "\xff", []byte{0xc0}),
		}},
		{name: "unknown compressor ID", code: wire.CodeUnsupportedCodec, send: [][]byte{data(1, 0, 0, 9, "", []byte("x"))}},
		{name: "compressor the remote did not announce", code: wire.CodeUnsupportedCodec,
			hello: func(h *wire.Hello) { h.Compressors = []wire.CodecEntry{{ID: 0, Name: "none", Version: 1}} },
			send:  [][]byte{data(1, 0, 0, uint8(codec.S2), "", bomb(codec.S2)[:100])}},
		{name: "corrupt compressed body", code: wire.CodeMalformed, send: [][]byte{data(1, 0, 0, uint8(codec.S2), "", garbageS2)}},
		{name: "message over MaxMessage", code: wire.CodeTooLarge, send: [][]byte{data(1, 0, 0, 0, "", make([]byte, 4097))}},
		{name: "chunked message over MaxMessage", code: wire.CodeTooLarge, send: [][]byte{
			data(1, wire.FlagMore, 0, 0, "", make([]byte, 2000)),
			data(1, wire.FlagMore, 0, 0, "", make([]byte, 2000)),
			data(1, 0, 0, 0, "", make([]byte, 2000)),
		}},
		{name: "s2 bomb", code: wire.CodeTooLarge, send: [][]byte{data(1, 0, 0, uint8(codec.S2), "", bomb(codec.S2))}},
		{name: "zstd bomb", code: wire.CodeTooLarge, send: [][]byte{data(1, 0, 0, uint8(codec.Zstd), "", bomb(codec.Zstd))}},
		{name: "gzip bomb", code: wire.CodeTooLarge, send: [][]byte{data(1, 0, 0, uint8(codec.Gzip), "", bomb(codec.Gzip))}},
		{name: "compressed chunks over MaxMessage together", code: wire.CodeTooLarge, send: func() [][]byte {
			c, _ := codec.CompressorByID(codec.S2)
			part, _ := c.Compress(nil, make([]byte, 3000))
			return [][]byte{
				data(1, wire.FlagMore, 0, uint8(codec.S2), "", part),
				data(1, 0, 0, uint8(codec.S2), "", part),
			}
		}()},
		{name: "HELLO after the handshake", code: wire.CodeUnexpectedFrame,
			send: [][]byte{wire.AppendHello(nil, 1, remoteHello("remote"))}},
		{name: "second RESUME", code: wire.CodeUnexpectedFrame,
			send: [][]byte{wire.AppendResume(nil, 1, wire.Resume{Instance: instanceOf("local")})}},
		{name: "REJECT after the handshake", code: wire.CodeUnexpectedFrame,
			send: [][]byte{wire.AppendClose(nil, 1, wire.TypeReject, wire.Close{Code: wire.CodeBusy})}},
		{name: "unknown frame type below 0x80", code: wire.CodeUnknownFrame,
			send: [][]byte{wire.AppendHeader(nil, wire.Header{Version: 1, Type: 0x30})}},
		{name: "frame of another protocol version", code: wire.CodeVersion,
			send: [][]byte{wire.AppendAck(nil, 2, 0)}},
		{name: "frame over MaxFrame", code: wire.CodeFrameTooLarge,
			send: [][]byte{wire.AppendHeader(nil, wire.Header{Version: 1, Type: wire.TypeData, Length: 1 << 20})}},
		{name: "4 GiB frame length", code: wire.CodeFrameTooLarge,
			send: [][]byte{wire.AppendHeader(nil, wire.Header{Version: 1, Type: wire.TypeData, Length: 0xFFFFFFFF})}},
		{name: "ACK for a message never sent", code: wire.CodeSequence, send: [][]byte{wire.AppendAck(nil, 1, 1)}},
		{name: "PROGRESS for a message never sent", code: wire.CodeSequence,
			send: [][]byte{wire.AppendProgress(nil, 1, wire.Progress{Seq: 1, Chunks: 1})}},
		{name: "malformed ACK", code: wire.CodeMalformed,
			send: [][]byte{append(wire.AppendHeader(nil, wire.Header{Version: 1, Type: wire.TypeAck, Length: 4}), 0, 0, 0, 1)}},
		{name: "malformed PING", code: wire.CodeMalformed,
			send: [][]byte{append(wire.AppendHeader(nil, wire.Header{Version: 1, Type: wire.TypePing, Length: 1}), 0)}},
		{name: "malformed GOODBYE", code: wire.CodeMalformed,
			send: [][]byte{append(wire.AppendHeader(nil, wire.Header{Version: 1, Type: wire.TypeGoodbye, Length: 1}), 0xc1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "local", func(c *Config) {
				c.MaxMessage = 4096
				c.MaxFrame = 64 << 10
				c.ChunkSize = 16 << 10
			})
			hello := remoteHello("remote")
			if tc.hello != nil {
				tc.hello(hello)
			}
			h := serve(t, newSession(cfg, "remote"), hello)
			h.up(0)
			h.r.send(tc.send...)
			bye := h.r.expectClose(wire.TypeGoodbye, tc.code)
			if bye.Reason == "" {
				t.Error("GOODBYE without a reason")
			}
			pe := wantProto(t, h.down(), tc.code)
			if pe.Remote {
				t.Errorf("%v marked as the remote's", pe)
			}
			if n := len(sinkOf(cfg).all()); n != 0 {
				t.Errorf("%d messages delivered", n)
			}
		})
	}
}

// TestConnDuplicatesDropped: after a reconnect the remote re-sends what
// this side delivered already (its ACK was lost); those are dropped and
// counted, chunked ones included.
func TestConnDuplicatesDropped(t *testing.T) {
	cfg := testConfig(t, "local", func(c *Config) { c.ChunkSize = 1024 })
	s := newSession(cfg, "remote")
	chunked := [][]byte{
		data(3, wire.FlagMore, 0, 0, "", []byte("c1")),
		data(3, wire.FlagMore, 0, 0, "", []byte("c2")),
		data(3, 0, 0, 0, "", []byte("c3")),
	}
	h := serve(t, s, remoteHello("remote"))
	h.up(0)
	h.r.send(data(1, 0, 0, 0, "", []byte("one")), data(2, 0, 0, 0, "", []byte("two")))
	h.r.send(chunked...)
	sinkOf(cfg).waitN(t, 3)
	h.r.expectAck(3)
	h.close() // a shutdown is not a failure: nothing is reported

	// The same remote instance reconnects and re-sends from 2.
	h2 := serve(t, s, remoteHello("remote"))
	ours := h2.up(0)
	if ours.Delivered != 3 {
		t.Fatalf("RESUME after the reconnect says delivered %d, want 3", ours.Delivered)
	}
	h2.r.send(data(2, 0, 0, 0, "", []byte("two")))
	h2.r.send(chunked...)
	h2.r.send(data(4, 0, 0, 0, "", []byte("four")))
	sinkOf(cfg).waitN(t, 4)
	h2.r.expectAck(4)
	var got []string
	for _, m := range sinkOf(cfg).all() {
		got = append(got, fmt.Sprintf("%d:%s", m.ID, m.Raw))
	}
	if want := "1:one 2:two 3:c1c2c3 4:four"; strings.Join(got, " ") != want {
		t.Fatalf("delivered %v, want %s", got, want)
	}
	if d := s.Stats().Duplicates; d != 2 {
		t.Fatalf("Duplicates = %d, want 2 (message 2 and the chunked message 3)", d)
	}
}

// TestConnRemoteRestartDelivers: a new instance of the remote starts its
// IDs again; nothing it sends is taken for a duplicate.
func TestConnRemoteRestartDelivers(t *testing.T) {
	cfg := testConfig(t, "local")
	s := newSession(cfg, "remote")
	h := serve(t, s, remoteHello("remote"))
	h.up(0)
	h.r.send(data(1, 0, 0, 0, "", []byte("a")), data(2, 0, 0, 0, "", []byte("b")))
	sinkOf(cfg).waitN(t, 2)
	h.close() // a shutdown is not a failure: nothing is reported

	restarted := remoteHello("remote")
	restarted.Instance++
	h2 := serve(t, s, restarted)
	if ours := h2.up(0); ours.Delivered != 0 || ours.Instance != restarted.Instance {
		t.Fatalf("RESUME to a restarted remote: %+v", ours)
	}
	if !h2.c.restarted {
		t.Fatal("restart not noticed")
	}
	h2.r.send(data(1, 0, 0, 0, "", []byte("new a")))
	if m := sinkOf(cfg).waitN(t, 3)[2]; string(m.Raw) != "new a" {
		t.Fatalf("got %q", m.Raw)
	}
	if s.Stats().Duplicates != 0 {
		t.Fatal("a restarted remote's message counted as a duplicate")
	}
}

func TestConnSkipsExtensionFrames(t *testing.T) {
	cfg := testConfig(t, "local")
	h := serve(t, newSession(cfg, "remote"), remoteHello("remote"))
	h.up(0)
	ext := append(wire.AppendHeader(nil, wire.Header{Version: 1, Type: 0x9a, Flags: 0x7f, Length: 5}), "hello"...)
	empty := wire.AppendHeader(nil, wire.Header{Version: 1, Type: 0xff})
	h.r.send(ext, data(1, 0, 0, 0, "", []byte("after")), empty, data(2, 0, 0, 0, "", []byte("again")))
	msgs := sinkOf(cfg).waitN(t, 2)
	if string(msgs[0].Raw) != "after" || string(msgs[1].Raw) != "again" {
		t.Fatalf("got %q %q", msgs[0].Raw, msgs[1].Raw)
	}
	h.r.expectAck(2)
	h.noDown()
}

func TestConnPingPong(t *testing.T) {
	cfg := testConfig(t, "local")
	h := serve(t, newSession(cfg, "remote"), remoteHello("remote"))
	h.up(0)
	h.r.send(wire.AppendPing(nil, 1, false, 42), wire.AppendPing(nil, 1, false, 43))
	var got []uint64
	for len(got) < 2 {
		hd, p := h.r.next()
		if hd.Type == wire.TypePong {
			n, _ := wire.ParsePing(p)
			got = append(got, n)
		}
	}
	if got[0] != 42 || got[1] != 43 {
		t.Fatalf("PONGs %v, want [42 43]", got)
	}
	h.noDown()
}

// TestConnResends: messages queued while disconnected are sent after the
// RESUME, from the first the remote does not hold; chunked ones resume at
// the chunk after those the remote holds.
func TestConnResends(t *testing.T) {
	cfg := testConfig(t, "local", func(c *Config) { c.ChunkSize = 1024 })
	s := newSession(cfg, "remote")
	ids := cfg.IDs
	for i := 1; i <= 5; i++ {
		if _, err := Send(context.Background(), []*Session{s}, ids, rawMsg([]byte(fmt.Sprint("m", i)))); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 4*1024)
	for i := range big {
		big[i] = byte(i / 1024)
	}
	Send(context.Background(), []*Session{s}, ids, rawMsg(big)) // message 6, four chunks

	h := serve(t, s, remoteHello("remote"))
	h.up(2) // the remote holds 1 and 2
	fs := h.r.dataFrames(3 + 4)
	for i, f := range fs[:3] {
		if f.Seq != uint64(3+i) || string(f.Body) != fmt.Sprint("m", 3+i) {
			t.Fatalf("resent frame %d: %d %q", i, f.Seq, f.Body)
		}
	}
	h.r.send(wire.AppendAck(nil, 1, 5), wire.AppendProgress(nil, 1, wire.Progress{Seq: 6, Chunks: 2}))
	testutil.Eventually(t, 5*time.Second, func() bool { return s.Stats().Acked == 5 && s.Stats().Unacked < 3*1024 },
		"acks not applied: %+v", s.Stats())
	h.close() // a shutdown is not a failure: nothing is reported

	// The remote held two chunks of 6 when the connection dropped.
	h3 := serve(t, s, remoteHello("remote"))
	h3.r.resumeWith(wire.Resume{Instance: cfg.Instance, Delivered: 5, Partial: 6, Chunks: 2})
	fs = h3.r.dataFrames(2)
	if fs[0].Seq != 6 || fs[0].Body[0] != 2 || fs[0].flags != wire.FlagMore || fs[1].Body[0] != 3 || fs[1].flags != 0 {
		t.Fatalf("partial resume sent chunks %d(%#x) %d(%#x) of %d, want chunks 2 and 3 of 6",
			fs[0].Body[0], fs[0].flags, fs[1].Body[0], fs[1].flags, fs[0].Seq)
	}
	h3.r.send(wire.AppendAck(nil, 1, 6))
	testutil.Eventually(t, 5*time.Second, func() bool { return s.Stats().Unacked == 0 && s.Stats().Acked == 6 },
		"stats %+v", s.Stats())
}

// resumeWith reads the local RESUME and answers with r.
func (r *remote) resumeWith(res wire.Resume) wire.Resume {
	r.t.Helper()
	h, p := r.next()
	if h.Type != wire.TypeResume {
		r.t.Fatalf("got %s, want RESUME", wire.TypeName(h.Type))
	}
	ours, err := wire.ParseResume(p)
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(wire.AppendResume(nil, 1, res))
	return ours
}

func TestConnBadResume(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first []byte
		code  wire.Code
		bye   bool // this side answers with a GOODBYE
	}{
		{"watermark beyond what was sent", wire.AppendResume(nil, 1, wire.Resume{Instance: instanceOf("local"), Delivered: 10}), wire.CodeSequence, true},
		{"partial message never sent", wire.AppendResume(nil, 1, wire.Resume{Instance: instanceOf("local"), Delivered: 1, Partial: 7, Chunks: 1}), wire.CodeSequence, true},
		{"another instance of this node", wire.AppendResume(nil, 1, wire.Resume{Instance: 99}), wire.CodeSequence, true},
		{"malformed", append(wire.AppendHeader(nil, wire.Header{Version: 1, Type: wire.TypeResume, Length: 3}), 1, 2, 3), wire.CodeMalformed, true},
		{"DATA first", data(1, 0, 0, 0, "", nil), wire.CodeUnexpectedFrame, true},
		{"REJECT instead of RESUME", wire.AppendClose(nil, 1, wire.TypeReject, wire.Close{Code: wire.CodeNameInUse, Reason: "taken"}), wire.CodeNameInUse, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "local")
			s := newSession(cfg, "remote")
			ids := cfg.IDs
			Send(context.Background(), []*Session{s}, ids, rawMsg([]byte("one")))
			h := serve(t, s, remoteHello("remote"))
			if h, _ := h.r.next(); h.Type != wire.TypeResume {
				t.Fatalf("first frame %s", wire.TypeName(h.Type))
			}
			h.r.send(tc.first)
			if tc.bye {
				h.r.expectClose(wire.TypeGoodbye, tc.code)
			}
			pe := wantProto(t, h.down(), tc.code)
			if pe.Remote == tc.bye {
				t.Fatalf("%v: Remote = %v", pe, pe.Remote)
			}
			if !tc.bye {
				h.r.expectEOF()
			}
		})
	}
}

func TestConnGoodbye(t *testing.T) {
	cfg := testConfig(t, "local")
	h := serve(t, newSession(cfg, "remote"), remoteHello("remote"))
	h.up(0)
	h.r.send(
		data(1, 0, 0, 0, "", []byte("a")),
		data(2, 0, 0, 0, "", []byte("b")),
		wire.AppendClose(nil, 1, wire.TypeGoodbye, wire.Close{Code: wire.CodeNone, Reason: "done here"}),
	)
	err := h.down()
	var gb *GoodbyeError
	if !errors.As(err, &gb) || gb.Close.Reason != "done here" || !strings.Contains(err.Error(), "done here") {
		t.Fatalf("down with %v, want the remote's goodbye", err)
	}
	// What came before the goodbye was delivered first.
	if msgs := sinkOf(cfg).all(); len(msgs) != 2 {
		t.Fatalf("%d messages delivered before the goodbye", len(msgs))
	}
}

func TestConnAbortFromRemote(t *testing.T) {
	cfg := testConfig(t, "local")
	h := serve(t, newSession(cfg, "remote"), remoteHello("remote"))
	h.up(0)
	h.r.send(
		data(7, wire.FlagMore, 0, 0, "", []byte("part")),
		data(7, wire.FlagAbort, 0, 0, "", nil),
	)
	h.r.expectAck(7) // the aborted message is acknowledged so the sender moves on
	h.r.send(data(8, 0, 0, 0, "", []byte("next")))
	msgs := sinkOf(cfg).waitN(t, 1)
	if len(msgs) != 1 || msgs[0].ID != 8 {
		t.Fatalf("delivered %+v, want only message 8", msgs)
	}
	h.noDown()
}

// TestConnUndecodable: a body this node cannot decode is delivered with
// Err set and its raw bytes; the connection goes on.
func TestConnUndecodable(t *testing.T) {
	cfg := testConfig(t, "local")
	h := serve(t, newSession(cfg, "remote"), remoteHello("remote"))
	h.up(0)
	h.r.send(
		data(1, 0, 9, 0, "", []byte("who knows")),                   // serializer never announced
		data(2, 0, uint8(codec.Msgpack), 0, "", []byte{0xc1, 0xc1}), // invalid msgpack
		data(3, 0, 0, 0, "", []byte("fine")),
	)
	msgs := sinkOf(cfg).waitN(t, 3)
	if msgs[0].Err == nil || string(msgs[0].Raw) != "who knows" {
		t.Errorf("unknown serializer: %+v", msgs[0])
	}
	if msgs[1].Err == nil {
		t.Errorf("invalid msgpack decoded: %+v", msgs[1])
	}
	if msgs[2].Err != nil || string(msgs[2].Raw) != "fine" {
		t.Errorf("third message %+v", msgs[2])
	}
	h.r.expectAck(3)
	h.noDown()
}

// TestConnRemoteMaxMessage: Send checks the size the remote's hello
// announced.
func TestConnRemoteMaxMessage(t *testing.T) {
	cfg := testConfig(t, "local")
	hello := remoteHello("remote")
	hello.MaxMessage = 1000
	s := newSession(cfg, "remote")
	h := serve(t, s, hello)
	h.up(0)
	ids := cfg.IDs
	if _, err := Send(context.Background(), []*Session{s}, ids, rawMsg(make([]byte, 1001))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("send over the remote's maximum = %v", err)
	}
	if _, err := Send(context.Background(), []*Session{s}, ids, rawMsg(make([]byte, 1000))); err != nil {
		t.Fatal(err)
	}
	if f := h.r.dataFrames(1)[0]; len(f.Body) != 1000 {
		t.Fatalf("sent %d bytes", len(f.Body))
	}
}

// pairUp connects sessions a and b (of two different nodes) with real
// connections on both ends.
func pairUp(t *testing.T, a, b *Session) (ca, cb *connHarness) {
	t.Helper()
	pa, pb := testutil.NewBufferedPipe(1 << 20)
	ch := make(chan result, 1)
	go func() {
		hs, err := RunHandshake(context.Background(), pb, b.cfg, false)
		ch <- result{hs, err}
	}()
	hsa, err := RunHandshake(context.Background(), pa, a.cfg, true)
	rb := <-ch
	if err != nil || rb.err != nil {
		t.Fatalf("handshake: %v / %v", err, rb.err)
	}
	start := func(s *Session, hs *Handshake, other net.Conn) *connHarness {
		h := &connHarness{t: t, cfg: s.cfg, s: s, ev: make(chan any, 64), r: &remote{nc: other}}
		h.gen = s.gen.Add(1)
		h.c = startConn(s, hs, h.gen, func(m any) { h.ev <- m })
		t.Cleanup(h.close)
		return h
	}
	return start(a, hsa, pb), start(b, rb.hs, pa)
}

// TestConnPartialMessageAfterRemoteRestart: the remote held the first
// chunks of a message (and said so with PROGRESS, so this side released
// them) when the connection dropped; it then restarted, losing them. The
// message can no longer be delivered whole, and must not be delivered as
// what is left of it.
func TestConnPartialMessageAfterRemoteRestart(t *testing.T) {
	cfg := testConfig(t, "local", func(c *Config) { c.ChunkSize = 1024 })
	s := newSession(cfg, "remote")
	ids := cfg.IDs
	body := make([]byte, 5*1024)
	rand.New(rand.NewSource(5)).Read(body)
	if _, err := Send(context.Background(), []*Session{s}, ids, rawMsg(body)); err != nil {
		t.Fatal(err)
	}

	// First connection: the remote takes two chunks, reports them, drops.
	h := serve(t, s, remoteHello("remote"))
	h.up(0)
	h.r.dataFrames(2)
	h.r.send(wire.AppendProgress(nil, 1, wire.Progress{Seq: 1, Chunks: 2}))
	testutil.Eventually(t, 5*time.Second, func() bool { return s.Stats().Unacked <= 3*(1024+19) },
		"PROGRESS not applied: %+v", s.Stats())
	h.r.nc.Close()
	h.down()
	h.close()

	// The remote restarted: a new instance, with a real connection.
	rcfg := testConfig(t, "remote", func(c *Config) { c.Instance = instanceOf("remote") + 2 })
	rs := newSession(rcfg, "local")
	_, rh := pairUp(t, s, rs)
	rh.up0(t)

	// Either message 1 arrives whole, or it never arrives and the sender
	// reports it failed.
	testutil.Eventually(t, 5*time.Second, func() bool {
		_, _, failed := s.AckStatus(1)
		return failed || s.Stats().Acked >= 1 || len(sinkOf(rcfg).all()) > 0
	}, "message 1 neither delivered nor failed")
	for _, m := range sinkOf(rcfg).all() {
		if m.ID == 1 && !bytes.Equal(m.Raw, body) {
			t.Fatalf("message 1 delivered with %d of its %d bytes (the chunks after the ones the old instance held), as if complete",
				len(m.Raw), len(body))
		}
	}
}

// up0 waits for a real connection's RESUME exchange.
func (h *connHarness) up0(t *testing.T) {
	t.Helper()
	if _, ok := h.event().(*connUp); !ok {
		t.Fatal("connection not up")
	}
}

// TestIntern: type names come back equal to their bytes, the same string
// for a name seen before (without allocating), whether it repeats or
// alternates with others, and past the table's limit still correct.
func TestIntern(t *testing.T) {
	c := &conn{types: map[string]string{}}
	if got := c.intern(nil); got != "" {
		t.Fatalf("intern(nil) = %q", got)
	}
	a, b := []byte("app.Reading"), []byte("app.Command")
	for i, name := range [][]byte{a, a, b, a, b, b} {
		if got := c.intern(name); got != string(name) {
			t.Fatalf("%d. intern(%q) = %q", i, name, got)
		}
	}
	if sa, sb := c.intern(a), c.intern(b); unsafe.StringData(sa) != unsafe.StringData(c.intern(a)) || unsafe.StringData(sb) != unsafe.StringData(c.intern(b)) {
		t.Fatal("a repeated name is not the interned string")
	}
	if n := testing.AllocsPerRun(100, func() {
		c.intern(a)
		c.intern(b)
	}); n != 0 {
		t.Fatalf("alternating known names: %v allocations, want 0", n)
	}
	for i := range maxTypeNames + 10 {
		name := fmt.Appendf(nil, "t%d", i)
		if got := c.intern(name); got != string(name) {
			t.Fatalf("intern(%q) = %q", name, got)
		}
	}
	if len(c.types) != maxTypeNames {
		t.Fatalf("%d names kept, want the limit %d", len(c.types), maxTypeNames)
	}
	if got := c.intern(a); got != "app.Reading" {
		t.Fatalf("intern(%q) = %q after the limit", a, got)
	}
}

func BenchmarkIntern(b *testing.B) {
	c := &conn{types: map[string]string{}}
	name := []byte("bench.Sample")
	b.ReportAllocs()
	for b.Loop() {
		c.intern(name)
	}
}

// TestBoxRaw: a raw body boxed from a slab of headers is the message's
// bytes, each message its own, whatever slab it came from; it allocates
// one slab per rawSlab messages.
func TestBoxRaw(t *testing.T) {
	c := &conn{}
	var bodies []any
	var raws [][]byte
	for i := range 3*rawSlab + 5 {
		raw := []byte(fmt.Sprintf("message %d", i))
		if i == 7 {
			raw = make([]byte, 64<<10) // large: boxed plainly
		}
		raws = append(raws, raw)
		bodies = append(bodies, c.boxRaw(raw))
	}
	for i, b := range bodies {
		got, ok := b.([]byte)
		if !ok || len(got) != len(raws[i]) || unsafe.SliceData(got) != unsafe.SliceData(raws[i]) || string(got) != string(raws[i]) {
			t.Fatalf("body %d = %T %q, want the raw bytes %q", i, b, b, raws[i][:min(len(raws[i]), 16)])
		}
	}
	raw := []byte("x")
	if n := testing.AllocsPerRun(10*rawSlab, func() { _ = c.boxRaw(raw) }); n > 0.1 {
		t.Fatalf("boxRaw: %v allocations per call, want one per %d", n, rawSlab)
	}
}
