// Command blob streams a large binary object, a 32 MiB camera frame, from
// one node to another: a typed header first, then the pixels in 1 MiB raw
// chunks with SendRaw. Send blocks while BufferCap bytes are
// unacknowledged, so the sender never runs ahead of the receiver by more
// than that. The camera compresses with s2 (the receiver decompresses
// whatever its own setting). The receiver shows its progress and the
// throughput, and checks the frame's SHA-256. It ends by itself.
//
//	go run ./examples/blob
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"math/rand/v2"
	"time"

	"github.com/slc-go/slc"
)

// FrameHeader announces a frame; its pixels follow as raw chunks.
type FrameHeader struct {
	Width, Height int
	BytesPerPixel int
	Size          int
	Chunks        int
	SHA256        []byte
}

func init() { slc.Register[FrameHeader]("example.FrameHeader") }

const (
	width, height, bpp = 4096, 4096, 2 // a 16-bit 4096x4096 frame: 32 MiB
	chunkSize          = 1 << 20
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	camera, err := slc.New(slc.WithName("camera"), slc.WithBufferCap(8<<20), slc.WithCompressor("s2"))
	if err != nil {
		return err
	}
	defer camera.Close()
	station, err := slc.New(slc.WithName("workstation"))
	if err != nil {
		return err
	}
	defer station.Close()
	addr, err := station.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	peer, err := camera.Connect(ctx, addr.String())
	if err != nil {
		return err
	}

	frame := makeFrame()
	sum := sha256.Sum256(frame)
	fmt.Printf("camera: frame of %dx%d, %d MiB, SHA-256 %x\n", width, height, len(frame)>>20, sum[:8])

	received := make(chan error, 1)
	go func() { received <- receive(ctx, station) }()

	// The header, then the chunks. SendRaw copies each chunk before it
	// returns, so the frame can be sliced without copying.
	start := time.Now()
	hdr := FrameHeader{Width: width, Height: height, BytesPerPixel: bpp, Size: len(frame),
		Chunks: (len(frame) + chunkSize - 1) / chunkSize, SHA256: sum[:]}
	if _, err := camera.Send(ctx, hdr, peer); err != nil {
		return err
	}
	var last slc.MsgID
	for off := 0; off < len(frame); off += chunkSize {
		if last, err = camera.SendRaw(ctx, frame[off:min(off+chunkSize, len(frame))], peer); err != nil {
			return err
		}
	}
	if err := camera.WaitAcknowledged(ctx, last, peer); err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Printf("camera: all %d chunks acknowledged in %v (%.0f MiB/s)\n", hdr.Chunks,
		elapsed.Round(time.Millisecond), float64(len(frame))/(1<<20)/elapsed.Seconds())
	return <-received
}

// receive takes a frame: the header, then its chunks, hashing as they come.
func receive(ctx context.Context, c *slc.Communicator) error {
	m, err := c.Receive(ctx)
	if err != nil {
		return err
	}
	hdr, ok := m.Body.(FrameHeader)
	if !ok {
		return fmt.Errorf("expected a FrameHeader, got %T", m.Body)
	}
	start := time.Now()
	frame := make([]byte, 0, hdr.Size)
	h := sha256.New()
	nextReport := hdr.Size / 4
	for len(frame) < hdr.Size {
		m, err := c.Receive(ctx, m.From)
		if err != nil {
			return err
		}
		frame = append(frame, m.Raw...)
		h.Write(m.Raw)
		m.Release() // copied: its buffer can carry the next chunk
		if len(frame) >= nextReport {
			secs := time.Since(start).Seconds()
			fmt.Printf("workstation: %3d%% (%d of %d MiB, %.0f MiB/s)\n", len(frame)*100/hdr.Size,
				len(frame)>>20, hdr.Size>>20, float64(len(frame))/(1<<20)/max(secs, 1e-9))
			nextReport += hdr.Size / 4
		}
	}
	if got := h.Sum(nil); !bytes.Equal(got, hdr.SHA256) {
		return fmt.Errorf("SHA-256 mismatch: got %x, want %x", got, hdr.SHA256)
	}
	fmt.Printf("blob: %dx%d frame received, SHA-256 verified\n", hdr.Width, hdr.Height)
	return nil
}

// makeFrame returns a synthetic 16-bit frame: a gradient with noise.
func makeFrame() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	frame := make([]byte, width*height*bpp)
	for y := range height {
		for x := range width {
			v := uint16(x*8+y*4) + uint16(rng.IntN(64))
			i := (y*width + x) * bpp
			frame[i], frame[i+1] = byte(v), byte(v>>8)
		}
	}
	return frame
}
