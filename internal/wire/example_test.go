package wire_test

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/slc-go/slc/internal/wire"
)

// A stream of frames, written with the Append functions and split again
// with a Reader.
func ExampleReader() {
	var stream []byte
	stream = wire.AppendData(stream, 1, 0, 1, 0, 0, "greeting", []byte("hello"))
	stream = wire.AppendAck(stream, 1, 7)

	fr := wire.NewReader(bytes.NewReader(stream), 0)
	fr.Version, fr.MaxPayload = 1, 1<<20
	for {
		h, p, err := fr.ReadFrame()
		if err != nil {
			break // io.EOF at the end of the stream
		}
		switch h.Type {
		case wire.TypeData:
			d, err := wire.ParseData(p)
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Printf("DATA %d %s %q\n", d.Seq, d.Type, d.Body)
		case wire.TypeAck:
			seq, err := wire.ParseAck(p)
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Printf("ACK %d\n", seq)
		}
	}
	// Output:
	// DATA 1 greeting "hello"
	// ACK 7
}

// Payloads point into the Reader's buffer. Hold keeps one beyond the next
// Fill; once every payload held from a buffer is released, and the Reader
// has moved on, the buffer is read into again instead of being garbage.
func ExampleReader_Hold() {
	var stream []byte
	for i, word := range []string{"one", "two", "three"} {
		stream = wire.AppendData(stream, 1, 0, uint64(i+1), 0, 0, "", []byte(word))
	}
	fr := wire.NewReader(bytes.NewReader(stream), 0)
	fr.Version, fr.MaxPayload = 1, 1<<20

	type held struct {
		lease *wire.Lease
		i     uint32
		body  []byte
	}
	var kept []held
	for {
		_, p, err := fr.ReadFrame()
		if err != nil {
			break
		}
		d, err := wire.ParseData(p)
		if err != nil {
			fmt.Println(err)
			return
		}
		l, i := fr.Hold() // d.Body stays as it is until released
		kept = append(kept, held{l, i, d.Body})
	}
	var words []string
	for _, k := range kept {
		words = append(words, string(k.body))
		k.lease.Release(k.i) // done with it: k.body must not be used again
	}
	fmt.Println(strings.Join(words, " "))
	// Output: one two three
}
