package peer

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
)

type result struct {
	hs  *Handshake
	err error
}

// both runs the handshake on both ends of a buffered pipe.
func both(t *testing.T, a, b *Config) (ra, rb result) {
	t.Helper()
	ca, cb := testutil.NewBufferedPipe(1 << 20)
	ch := make(chan result, 1)
	go func() {
		hs, err := RunHandshake(context.Background(), cb, b, false)
		ch <- result{hs, err}
	}()
	hs, err := RunHandshake(context.Background(), ca, a, true)
	ra, rb = result{hs, err}, <-ch
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ra, rb
}

// against runs the local handshake (the accepting side) against a remote
// scripted by hand, and returns the local result once both are done.
func against(t *testing.T, cfg *Config, script func(r *remote)) result {
	t.Helper()
	a, b := testutil.NewBufferedPipe(1 << 20)
	defer a.Close()
	defer b.Close()
	ch := make(chan result, 1)
	go func() {
		hs, err := RunHandshake(context.Background(), a, cfg, false)
		ch <- result{hs, err}
	}()
	script(newRemote(t, b, remoteHello("remote")))
	return <-ch
}

// preamble sends a preamble and reads the local one.
func (r *remote) preamble(p wire.Preamble) {
	r.t.Helper()
	r.send(wire.AppendPreamble(nil, p))
	if _, err := wire.ParsePreamble(r.readFull(wire.PreambleLen)); err != nil {
		r.t.Fatal(err)
	}
}

var plain = wire.Preamble{Min: 1, Max: 1, Mode: wire.ModePlain}

// helloThenRead sends the preamble and hello h, reads the local HELLO and
// returns the frame after it (REJECT, or EOF as an error).
func (r *remote) helloThen(h *wire.Hello) (wire.Header, []byte, error) {
	r.t.Helper()
	r.preamble(plain)
	r.send(wire.AppendHello(nil, 1, h))
	if hd, _ := r.next(); hd.Type != wire.TypeHello {
		r.t.Fatalf("local side sent %s, want HELLO", wire.TypeName(hd.Type))
	}
	return r.nextErr()
}

func TestHandshakeSuccess(t *testing.T) {
	a := testConfig(t, "alpha", func(c *Config) { c.Compressor = codec.Zstd })
	b := testConfig(t, "beta")
	ra, rb := both(t, a, b)
	if ra.err != nil || rb.err != nil {
		t.Fatalf("handshake: %v / %v", ra.err, rb.err)
	}
	for _, tc := range []struct {
		hs           *Handshake
		remote       string
		dialed       bool
		remoteConfig *Config
	}{{ra.hs, "beta", true, b}, {rb.hs, "alpha", false, a}} {
		hs := tc.hs
		if hs.Remote.Name != tc.remote || hs.Remote.Instance != tc.remoteConfig.Instance || hs.Dialed != tc.dialed || hs.Version != 1 {
			t.Fatalf("handshake with %s: remote %+v dialed %v version %d", tc.remote, hs.Remote, hs.Dialed, hs.Version)
		}
		if hs.Remote.MaxMessage != tc.remoteConfig.MaxMessage || hs.Remote.MaxFrame != tc.remoteConfig.MaxFrame {
			t.Fatalf("limits not carried: %+v", hs.Remote)
		}
		// The codec tables map the remote's IDs to this process's codecs.
		for _, e := range codec.Serializers() {
			if s := hs.ser[e.ID]; s == nil || s.Name() != e.Name || hs.sid[e.ID] != e.ID {
				t.Errorf("serializer %s (ID %d) not in the table", e.Name, e.ID)
			}
		}
		for _, e := range codec.Compressors() {
			if c := hs.comp[e.ID]; c == nil || c.Name() != e.Name {
				t.Errorf("compressor %s (ID %d) not in the table", e.Name, e.ID)
			}
		}
		if hs.Reader == nil || hs.Reader.MaxPayload != tc.remoteConfig.MaxFrame && hs.Reader.MaxPayload != a.MaxFrame {
			t.Errorf("reader not set up for data frames: %+v", hs.Reader)
		}
		if !hs.Deadline.After(time.Now()) {
			t.Errorf("deadline %v already passed", hs.Deadline)
		}
	}
}

// TestHandshakeCodecMapping checks that codecs are matched by name and
// version, not by ID: a remote may number them differently, and entries
// this node lacks are ignored.
func TestHandshakeCodecMapping(t *testing.T) {
	cfg := testConfig(t, "local")
	h := remoteHello("remote")
	h.Serializers = []wire.CodecEntry{
		{ID: 7, Name: "msgpack", Version: 1},
		{ID: 9, Name: "json", Version: 99}, // another version: unusable
		{ID: 20, Name: "capnproto", Version: 1},
		{ID: 0, Name: "raw", Version: 1},
	}
	h.Compressors = []wire.CodecEntry{{ID: 0, Name: "none", Version: 1}, {ID: 5, Name: "s2", Version: 1}}
	var hs *Handshake
	res := against(t, cfg, func(r *remote) {
		r.hello = h
		r.handshake()
	})
	if res.err != nil {
		t.Fatal(res.err)
	}
	hs = res.hs
	if hs.ser[7] == nil || hs.ser[7].Name() != "msgpack" || hs.sid[7] != codec.Msgpack {
		t.Errorf("msgpack under the remote's ID 7: %v / %d", hs.ser[7], hs.sid[7])
	}
	if hs.ser[9] != nil || hs.ser[20] != nil || hs.ser[1] != nil {
		t.Errorf("unusable or unannounced serializers in the table: 9=%v 20=%v 1=%v", hs.ser[9], hs.ser[20], hs.ser[1])
	}
	if hs.comp[5] == nil || hs.comp[5].Name() != "s2" || hs.comp[1] != nil {
		t.Errorf("compressor table: 5=%v 1=%v", hs.comp[5], hs.comp[1])
	}
}

// TestHandshakeKeepsFollowingFrames: frames the remote sent right after
// its hello (its RESUME) stay in the handshake's reader.
func TestHandshakeKeepsFollowingFrames(t *testing.T) {
	cfg := testConfig(t, "local")
	res := against(t, cfg, func(r *remote) {
		b := wire.AppendPreamble(nil, plain)
		b = wire.AppendHello(b, 1, r.hello)
		b = wire.AppendResume(b, 1, wire.Resume{Instance: cfg.Instance, Delivered: 42})
		r.send(b)
		r.readFull(wire.PreambleLen)
		r.next()
	})
	if res.err != nil {
		t.Fatal(res.err)
	}
	h, p, ok, err := res.hs.Reader.Buffered()
	if err != nil || !ok || h.Type != wire.TypeResume {
		t.Fatalf("buffered frame: %v %v %v", h, ok, err)
	}
	if r, err := wire.ParseResume(p); err != nil || r.Delivered != 42 {
		t.Fatalf("RESUME %+v, %v", r, err)
	}
}

// fakeSecurity is a Security that does no cryptography.
type fakeSecurity struct {
	mode       uint8
	handshakes atomic.Int32
	authorize  func(name string) error
}

type fakeIdentity string

func (f fakeIdentity) Fingerprint() string { return string(f) }

func (s *fakeSecurity) Mode() uint8 { return s.mode }
func (s *fakeSecurity) Handshake(ctx context.Context, conn net.Conn, initiator bool) (net.Conn, Identity, error) {
	s.handshakes.Add(1)
	return conn, fakeIdentity("key"), nil
}
func (s *fakeSecurity) Authorize(name string, id Identity) error {
	if s.authorize != nil {
		return s.authorize(name)
	}
	return nil
}

// recSecurity is a fakeSecurity that records the preambles its handshake
// is given.
type recSecurity struct {
	fakeSecurity
	pre atomic.Pointer[[2][wire.PreambleLen]byte] // local, remote
}

func (s *recSecurity) Handshake(ctx context.Context, conn net.Conn, initiator bool) (net.Conn, Identity, error) {
	pc := conn.(*PreambleConn)
	s.pre.Store(&[2][wire.PreambleLen]byte{pc.Local, pc.Remote})
	return s.fakeSecurity.Handshake(ctx, conn, initiator)
}

// flagSecurity is a recSecurity that sets preamble flags.
type flagSecurity struct {
	recSecurity
	flags uint8
}

func (s *flagSecurity) PreambleFlags() uint8 { return s.flags }

// TestHandshakePreambleFlags: a Security that implements PreambleFlagger
// has its flags sent in byte 7 of the preamble; one that does not (an
// older implementation) sends 0. The flags do not affect the version and
// mode negotiation, and both preambles reach both security handshakes.
func TestHandshakePreambleFlags(t *testing.T) {
	fa := &flagSecurity{recSecurity: recSecurity{fakeSecurity: fakeSecurity{mode: wire.ModeNoiseXX}}, flags: wire.PreambleAESGCM}
	rb := &recSecurity{fakeSecurity: fakeSecurity{mode: wire.ModeNoiseXX}}
	a := testConfig(t, "alpha", func(c *Config) { c.Security = fa })
	b := testConfig(t, "beta", func(c *Config) { c.Security = rb })
	ra, rr := both(t, a, b)
	if ra.err != nil || rr.err != nil {
		t.Fatal(ra.err, rr.err)
	}
	pa, pb := fa.pre.Load(), rb.pre.Load()
	if pa == nil || pb == nil {
		t.Fatal("a security handshake did not run")
	}
	want := func(flags uint8) [wire.PreambleLen]byte {
		return [wire.PreambleLen]byte(wire.AppendPreamble(nil, wire.Preamble{Min: wire.MinVersion, Max: wire.MaxVersion, Mode: wire.ModeNoiseXX, Flags: flags}))
	}
	if pa[0] != want(wire.PreambleAESGCM) || pa[1] != want(0) {
		t.Errorf("flagged side: sent %x, received %x", pa[0], pa[1])
	}
	if pb[0] != want(0) || pb[1] != want(wire.PreambleAESGCM) {
		t.Errorf("unflagged side: sent %x, received %x", pb[0], pb[1])
	}
}

func TestHandshakeSecurity(t *testing.T) {
	t.Run("mismatch", func(t *testing.T) {
		sec := &fakeSecurity{mode: wire.ModeNoiseXX}
		a := testConfig(t, "alpha", func(c *Config) { c.Security = sec })
		b := testConfig(t, "beta")
		ra, rb := both(t, a, b)
		for _, r := range []result{ra, rb} {
			pe := wantProto(t, r.err, wire.CodeSecurityMismatch)
			if !strings.Contains(pe.Reason, "plain") || !strings.Contains(pe.Reason, "noise") {
				t.Errorf("reason %q does not name both modes", pe.Reason)
			}
		}
		if n := sec.handshakes.Load(); n != 0 {
			t.Fatalf("the security handshake ran %d times despite the mismatch", n)
		}
	})
	t.Run("different secure modes", func(t *testing.T) {
		a := testConfig(t, "alpha", func(c *Config) { c.Security = &fakeSecurity{mode: wire.ModeNoiseXX} })
		b := testConfig(t, "beta", func(c *Config) { c.Security = &fakeSecurity{mode: wire.ModeNoisePSK} })
		ra, rb := both(t, a, b)
		wantProto(t, ra.err, wire.CodeSecurityMismatch)
		wantProto(t, rb.err, wire.CodeSecurityMismatch)
	})
	t.Run("same mode", func(t *testing.T) {
		var asked atomic.Value
		sec := &fakeSecurity{mode: wire.ModeNoiseXX, authorize: func(name string) error { asked.Store(name); return nil }}
		a := testConfig(t, "alpha", func(c *Config) { c.Security = sec })
		b := testConfig(t, "beta", func(c *Config) { c.Security = sec })
		ra, rb := both(t, a, b)
		if ra.err != nil || rb.err != nil {
			t.Fatal(ra.err, rb.err)
		}
		if ra.hs.Identity == nil || ra.hs.Identity.Fingerprint() != "key" || sec.handshakes.Load() != 2 {
			t.Fatalf("identity %v after %d security handshakes", ra.hs.Identity, sec.handshakes.Load())
		}
		if n, _ := asked.Load().(string); n != "alpha" && n != "beta" {
			t.Fatalf("Authorize asked about %q", n)
		}
	})
	t.Run("unauthorized", func(t *testing.T) {
		deny := &fakeSecurity{mode: wire.ModeNoiseXX, authorize: func(name string) error {
			return &wire.ProtocolError{Code: wire.CodeUnauthorized, Reason: "key not trusted for " + name}
		}}
		a := testConfig(t, "alpha", func(c *Config) { c.Security = deny })
		b := testConfig(t, "beta", func(c *Config) { c.Security = &fakeSecurity{mode: wire.ModeNoiseXX} })
		ra, rb := both(t, a, b)
		wantProto(t, ra.err, wire.CodeUnauthorized)
		// The other side learns why from the REJECT: in its handshake, or,
		// when its own checks passed first, as the frame after the hello.
		expectRejected(t, rb, wire.CodeUnauthorized)
	})
}

// TestHandshakeRejects covers remotes this side must refuse, and what each
// side reports.
func TestHandshakeRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    func(*Config)
		script func(r *remote)
		check  func(t *testing.T, err error)
	}{
		{
			name: "version mismatch",
			script: func(r *remote) {
				r.preamble(wire.Preamble{Min: 2, Max: 3})
				r.expectEOF()
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, wire.ErrInvalidVersion) {
					t.Fatalf("err %v", err)
				}
			},
		},
		{
			name: "invalid version range",
			script: func(r *remote) {
				r.send(wire.AppendPreamble(nil, wire.Preamble{Min: 3, Max: 1}))
				r.readFull(wire.PreambleLen)
				r.expectEOF()
			},
			check: func(t *testing.T, err error) { wantProto(t, err, wire.CodeMalformed) },
		},
		{
			name: "bad magic",
			script: func(r *remote) {
				r.send([]byte("GET / HTTP/1.1\r\n\r\n"))
				r.readFull(wire.PreambleLen)
				r.expectEOF()
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, wire.ErrBadMagic) {
					t.Fatalf("err %v", err)
				}
			},
		},
		{
			name: "truncated preamble",
			script: func(r *remote) {
				r.send([]byte("slc\x00"))
				r.nc.(interface{ CloseWrite() error }).CloseWrite()
				r.readFull(wire.PreambleLen)
				r.expectEOF()
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "preamble") {
					t.Fatalf("err %v, want an unexpected EOF in the preamble", err)
				}
			},
		},
		{
			name: "hello with this node's own name",
			script: func(r *remote) {
				h := remoteHello("local")
				h.Instance = 12345
				r.expectRejectAfter(h, wire.CodeSameName)
			},
			check: func(t *testing.T, err error) { wantProto(t, err, wire.CodeSameName) },
		},
		{
			name: "remote cannot decode the serializer",
			script: func(r *remote) {
				h := remoteHello("remote")
				h.Serializers = []wire.CodecEntry{{ID: 0, Name: "raw", Version: 1}}
				r.expectRejectAfter(h, wire.CodeUnsupportedCodec)
			},
			check: func(t *testing.T, err error) {
				pe := wantProto(t, err, wire.CodeUnsupportedCodec)
				if !strings.Contains(pe.Reason, "msgpack") {
					t.Fatalf("reason %q does not name the serializer", pe.Reason)
				}
			},
		},
		{
			name: "remote cannot decompress",
			cfg:  func(c *Config) { c.Compressor = codec.Zstd },
			script: func(r *remote) {
				h := remoteHello("remote")
				h.Compressors = []wire.CodecEntry{{ID: 0, Name: "none", Version: 1}}
				r.expectRejectAfter(h, wire.CodeUnsupportedCodec)
			},
			check: func(t *testing.T, err error) {
				pe := wantProto(t, err, wire.CodeUnsupportedCodec)
				if !strings.Contains(pe.Reason, "zstd") {
					t.Fatalf("reason %q does not name the compressor", pe.Reason)
				}
			},
		},
		{
			name: "remote frames smaller than this node's chunks",
			script: func(r *remote) {
				h := remoteHello("remote")
				h.MaxFrame = wire.MinFrameLimit
				r.expectRejectAfter(h, wire.CodeFrameTooLarge)
			},
			check: func(t *testing.T, err error) {
				pe := wantProto(t, err, wire.CodeFrameTooLarge)
				if !strings.Contains(pe.Reason, "chunk") {
					t.Fatalf("reason %q gives no hint", pe.Reason)
				}
			},
		},
		{
			name: "invalid hello (empty name)",
			script: func(r *remote) {
				h := remoteHello("remote")
				h.Name = ""
				r.expectRejectAfter(h, wire.CodeBadHello)
			},
			check: func(t *testing.T, err error) { wantProto(t, err, wire.CodeBadHello) },
		},
		{
			name: "malformed hello",
			script: func(r *remote) {
				r.preamble(plain)
				r.send(append(wire.AppendHeader(nil, wire.Header{Version: 1, Type: wire.TypeHello, Length: 3}), 0xc1, 0xc1, 0xc1))
				r.next()
				h, p := r.next()
				if c, _ := wire.ParseClose(p); h.Type != wire.TypeReject || c.Code != wire.CodeBadHello {
					r.t.Fatalf("got %s %+v, want REJECT bad hello", wire.TypeName(h.Type), c)
				}
			},
			check: func(t *testing.T, err error) { wantProto(t, err, wire.CodeBadHello) },
		},
		{
			name: "hello over the size limit",
			script: func(r *remote) {
				r.preamble(plain)
				r.send(wire.AppendHeader(nil, wire.Header{Version: 1, Type: wire.TypeHello, Length: 0xFFFFFFFF}))
				r.next()
				// The local side may tell why before it closes.
				if h, p, err := r.nextErr(); err == nil {
					if c, _ := wire.ParseClose(p); h.Type != wire.TypeReject || c.Code != wire.CodeFrameTooLarge {
						r.t.Fatalf("got %s %+v, want REJECT frame too large or EOF", wire.TypeName(h.Type), c)
					}
					r.expectEOF()
				}
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, wire.ErrFrameTooLarge) {
					t.Fatalf("err %v", err)
				}
			},
		},
		{
			name: "DATA instead of HELLO",
			script: func(r *remote) {
				r.preamble(plain)
				r.send(data(1, 0, 1, 0, "", []byte("x")))
				r.next()
				h, p := r.next()
				if c, _ := wire.ParseClose(p); h.Type != wire.TypeReject || c.Code != wire.CodeUnexpectedFrame {
					r.t.Fatalf("got %s %+v, want REJECT unexpected frame", wire.TypeName(h.Type), c)
				}
			},
			check: func(t *testing.T, err error) { wantProto(t, err, wire.CodeUnexpectedFrame) },
		},
		{
			name: "REJECT instead of HELLO",
			script: func(r *remote) {
				r.preamble(plain)
				r.send(wire.AppendClose(nil, 1, wire.TypeReject, wire.Close{Code: wire.CodeBusy, Reason: "go away"}))
				r.next() // our HELLO
				r.expectEOF()
			},
			check: func(t *testing.T, err error) {
				pe := wantProto(t, err, wire.CodeBusy)
				if !pe.Remote || pe.Reason != "go away" {
					t.Fatalf("%+v: want the remote's reason, marked remote", pe)
				}
			},
		},
		{
			name: "GOODBYE instead of HELLO",
			script: func(r *remote) {
				r.preamble(plain)
				r.send(wire.AppendClose(nil, 1, wire.TypeGoodbye, wire.Close{Code: wire.CodeShutdown, Reason: "bye"}))
				r.next()
				r.expectEOF()
			},
			check: func(t *testing.T, err error) {
				if pe := wantProto(t, err, wire.CodeShutdown); !pe.Remote {
					t.Fatalf("%+v not marked remote", pe)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*Config)
			if tc.cfg != nil {
				mods = append(mods, tc.cfg)
			}
			cfg := testConfig(t, "local", mods...)
			res := against(t, cfg, tc.script)
			if res.err == nil {
				t.Fatal("handshake succeeded")
			}
			tc.check(t, res.err)
		})
	}
}

// expectRejectAfter sends a valid preamble and hello h and expects a
// REJECT with code after the local HELLO, then the end of the connection.
func (r *remote) expectRejectAfter(h *wire.Hello, code wire.Code) {
	r.t.Helper()
	hd, p, err := r.helloThen(h)
	if err != nil {
		r.t.Fatalf("no REJECT: %v", err)
	}
	c, perr := wire.ParseClose(p)
	if hd.Type != wire.TypeReject || perr != nil || c.Code != code {
		r.t.Fatalf("got %s %+v (%v), want REJECT %v", wire.TypeName(hd.Type), c, perr, code)
	}
	r.expectEOF()
}

// TestHandshakeRemoteRejectsUs: a remote that refuses this node's hello
// answers with a REJECT, which this side reports as the remote's error.
func TestHandshakeRemoteRejectsUs(t *testing.T) {
	a := testConfig(t, "alpha")
	b := testConfig(t, "beta", func(c *Config) { c.MaxFrame = wire.MinFrameLimit })
	ra, rb := both(t, a, b)
	// beta cannot take alpha's 4 MiB chunks: alpha refuses beta, and beta
	// learns why.
	wantProto(t, ra.err, wire.CodeFrameTooLarge)
	expectRejected(t, rb, wire.CodeFrameTooLarge)
}

// expectRejected checks that a handshake failed with a REJECT from the
// remote carrying code, or passed and has that REJECT as its next frame
// (the verdicts of the two sides cross).
func expectRejected(t *testing.T, r result, code wire.Code) {
	t.Helper()
	err := r.err
	if err == nil {
		r.hs.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, p, rerr := r.hs.Reader.ReadFrame()
		if rerr != nil || h.Type != wire.TypeReject {
			t.Fatalf("after the handshake: %s, %v; want a REJECT", wire.TypeName(h.Type), rerr)
		}
		c, perr := wire.ParseClose(p)
		if perr != nil {
			t.Fatal(perr)
		}
		err = c.Err()
	}
	if pe := wantProto(t, err, code); !pe.Remote {
		t.Fatalf("%v: not marked as the remote's verdict", err)
	}
}

// The timeouts run in a synctest bubble: no real waiting.

func TestHandshakeSilentPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "local", func(c *Config) { c.Timeout = 5 * time.Second })
		a, b := testutil.NewBufferedPipe(1 << 16)
		defer b.Close()
		start := time.Now()
		_, err := RunHandshake(context.Background(), a, cfg, false)
		pe := wantProto(t, err, wire.CodeTimeout)
		if took := time.Since(start); took != 5*time.Second {
			t.Fatalf("gave up after %v, want the 5s timeout", took)
		}
		if !strings.Contains(pe.Reason, "preamble") {
			t.Fatalf("reason %q does not say what was missing", pe.Reason)
		}
		// The connection is closed.
		b.SetReadDeadline(time.Now().Add(time.Second))
		io.ReadFull(b, make([]byte, wire.PreambleLen))
		if _, err := b.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("after the timeout the remote reads %v, want EOF", err)
		}
	})
}

func TestHandshakeSilentAfterPreamble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "local", func(c *Config) { c.Timeout = 3 * time.Second })
		a, b := testutil.NewBufferedPipe(1 << 16)
		defer b.Close()
		b.Write(wire.AppendPreamble(nil, plain))
		start := time.Now()
		_, err := RunHandshake(context.Background(), a, cfg, false)
		pe := wantProto(t, err, wire.CodeTimeout)
		if took := time.Since(start); took != 3*time.Second || !strings.Contains(pe.Reason, "hello") {
			t.Fatalf("after %v: %v", took, err)
		}
	})
}

// TestHandshakeContextDeadline: a context deadline shorter than Timeout
// bounds the handshake.
func TestHandshakeContextDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "local", func(c *Config) { c.Timeout = time.Hour })
		a, b := testutil.NewBufferedPipe(1 << 16)
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := RunHandshake(ctx, a, cfg, true)
		wantProto(t, err, wire.CodeTimeout)
		if took := time.Since(start); took != 2*time.Second {
			t.Fatalf("gave up after %v, want 2s", took)
		}
	})
}

// TestHandshakeCanceled: canceling the context (the node shuts down, or
// the dial is abandoned) stops the handshake at once, and the error says
// it was canceled rather than that the remote was too slow.
func TestHandshakeCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "local", func(c *Config) { c.Timeout = time.Hour })
		a, b := testutil.NewBufferedPipe(1 << 16)
		defer b.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		_, err := RunHandshake(ctx, a, cfg, true)
		if took := time.Since(start); took != time.Second {
			t.Fatalf("returned after %v, want 1s", took)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled handshake returned %v; want an error wrapping context.Canceled", err)
		}
		if pe, ok := wire.AsProtocolError(err); ok && pe.Code == wire.CodeTimeout {
			t.Errorf("a canceled handshake is reported as a remote timeout: %v", err)
		}
	})
}
