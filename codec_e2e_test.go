package slc_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/slc-go/slc"
)

// Every compressor carries typed and raw messages, compressible or not.
func TestCompressorsEndToEnd(t *testing.T) {
	compressible := bytes.Repeat([]byte("slc compresses this line well. "), 2000)
	random := make([]byte, 50000)
	rand.Read(random)
	for _, comp := range []string{"none", "s2", "zstd", "gzip"} {
		t.Run(comp, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			a, b, aID := connectPair(t, ctx, nil, []slc.Option{slc.WithCompressor(comp), slc.WithCompressThreshold(256)})
			for _, body := range [][]byte{compressible, random, []byte("short")} {
				if _, err := b.Send(ctx, Seq{N: len(body), Payload: body}, aID); err != nil {
					t.Fatal(err)
				}
				if _, err := b.SendRaw(ctx, body, aID); err != nil {
					t.Fatal(err)
				}
				m, err := a.Receive(ctx)
				if err != nil || !bytes.Equal(m.Body.(Seq).Payload, body) {
					t.Fatalf("typed body of %d bytes: %v %v", len(body), err, m.Err)
				}
				m, err = a.Receive(ctx)
				if err != nil || !bytes.Equal(m.Raw, body) || !bytes.Equal(m.Body.([]byte), body) {
					t.Fatalf("raw body of %d bytes: %v %v", len(body), err, m.Err)
				}
			}
		})
	}
}

// The JSON serializer carries the same typed messages; unregistered
// values arrive as generic maps.
func TestSerializers(t *testing.T) {
	type unregistered struct {
		Name  string
		Count int
	}
	for _, ser := range []string{"msgpack", "json"} {
		t.Run(ser, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			a, b, aID := connectPair(t, ctx, nil, []slc.Option{slc.WithSerializer(ser)})
			if _, err := b.Send(ctx, Seq{N: 5, Payload: []byte{1, 2}}, aID); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Send(ctx, unregistered{"x", 3}, aID); err != nil {
				t.Fatal(err)
			}
			m, err := a.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := m.Body.(Seq); !ok || s.N != 5 || !bytes.Equal(s.Payload, []byte{1, 2}) {
				t.Fatalf("typed: %T %+v (%v)", m.Body, m.Body, m.Err)
			}
			m, err = a.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			g, ok := m.Body.(map[string]any)
			if !ok || g["Name"] != "x" || m.Type != "" {
				t.Fatalf("unregistered: %T %+v type %q", m.Body, m.Body, m.Type)
			}
		})
	}
}

// A message larger than a frame is chunked and reassembled; one larger
// than the receiver accepts is refused before it is sent.
func TestLargeMessages(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	a, b, aID := connectPair(t, ctx,
		[]slc.Option{slc.WithMaxMessage(8 << 20)},
		[]slc.Option{slc.WithChunkSize(64 << 10), slc.WithBufferCap(256 << 10), slc.WithCompressor("s2")})
	for _, size := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1 << 20, 5<<20 + 3} {
		blob := make([]byte, size)
		rand.Read(blob[:size/2]) // half random, half zeros: some chunks compress
		want := sha256.Sum256(blob)
		if _, err := b.SendRaw(ctx, blob, aID); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		m, err := a.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Raw) != size || sha256.Sum256(m.Raw) != want {
			t.Fatalf("%d bytes sent, %d received, checksum differs", size, len(m.Raw))
		}
	}
	_, err := b.SendRaw(ctx, make([]byte, 8<<20+1), aID)
	if !errors.Is(err, slc.ErrTooLarge) {
		t.Fatalf("oversize send = %v; want ErrTooLarge", err)
	}
	// The session is unharmed.
	if _, err := b.Send(ctx, Seq{N: 1}, aID); err != nil {
		t.Fatal(err)
	}
	if m, err := a.Receive(ctx); err != nil || m.Body.(Seq).N != 1 {
		t.Fatalf("after the refused send: %+v %v", m, err)
	}
}
