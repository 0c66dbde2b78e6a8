package main

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/codec"
)

// Sample is the typed message of the typed cells. slc sends it as a
// registered type; the other systems carry the same struct encoded with
// the same msgpack serializer (slc's codec package, usable on its own with
// any transport), so every system puts the same bytes on the wire and
// pays the same for encoding and decoding.
//
// Seq starts at seqBase, so it always encodes in 9 bytes and the encoded
// size does not change during a run. Data is sized so that the msgpack
// form is exactly the cell's size: 12 bytes for the 64 B cell.
type Sample struct {
	Seq    uint64
	Sensor string
	Value  float64
	Data   []byte
}

func init() { slc.Register[Sample]("bench.Sample") }

const (
	seqBase    = 1 << 32
	sensorName = "sensor-1"
	minRaw     = 8 // a raw payload starts with its sequence number
)

// Payload describes the messages of one cell: their size and whether they
// are raw bytes or a typed Sample. It is read-only once made.
type Payload struct {
	Size  int
	Typed bool
	// raw is the raw template (sequence number at [0:8], a pattern after);
	// data is Sample.Data of the typed form.
	raw  []byte
	data []byte
}

// NewPayload returns the payload of size bytes, raw or typed.
func NewPayload(size int, typed bool) (*Payload, error) {
	p := &Payload{Size: size, Typed: typed}
	if !typed {
		if size < minRaw {
			return nil, fmt.Errorf("raw messages need at least %d bytes, got %d", minRaw, size)
		}
		p.raw = make([]byte, size)
		fillPattern(p.raw[minRaw:], 3)
		return p, nil
	}
	n, err := dataLen(size)
	if err != nil {
		return nil, err
	}
	p.data = make([]byte, n)
	fillPattern(p.data, 5)
	return p, nil
}

func fillPattern(b []byte, seed byte) {
	for i := range b {
		b[i] = byte(i)*7 + seed
	}
}

// sampleValue is Sample.Value for a sequence number.
func sampleValue(seq uint64) float64 { return float64(seq&0xffff) + 0.5 }

// encodedLen returns the msgpack size of a Sample with n bytes of data.
func encodedLen(n int) int {
	b, err := msgpackSerializer().Append(nil, &Sample{Seq: seqBase, Sensor: sensorName, Value: 0.5, Data: make([]byte, n)})
	if err != nil {
		panic(err)
	}
	return len(b)
}

// dataLen returns the Data length whose msgpack form is size bytes.
func dataLen(size int) (int, error) {
	fixed := encodedLen(0) // with a 2-byte bin header
	for n := max(0, size-fixed-3); n <= size; n++ {
		switch l := encodedLen(n); {
		case l == size:
			return n, nil
		case l > size:
			return 0, fmt.Errorf("no Sample encodes to exactly %d bytes", size)
		}
	}
	return 0, fmt.Errorf("typed messages need at least %d bytes, got %d", fixed, size)
}

// msgpackSerializer is the serializer slc uses for typed messages.
func msgpackSerializer() codec.Serializer {
	s, ok := codec.SerializerByID(codec.Msgpack)
	if !ok {
		panic("no msgpack serializer")
	}
	return s
}

// Encoder builds the messages of one sender. It is reused for every
// message and is not safe for concurrent use: the slice Encode returns is
// valid until the next call.
type Encoder struct {
	p   *Payload
	raw []byte
	s   Sample
	buf []byte
	ser codec.Serializer
}

// NewEncoder returns an encoder for p's messages.
func (p *Payload) NewEncoder() *Encoder {
	e := &Encoder{p: p}
	if p.Typed {
		e.s = Sample{Sensor: sensorName, Data: p.data}
		e.buf = make([]byte, 0, p.Size)
		e.ser = msgpackSerializer()
	} else {
		e.raw = bytes.Clone(p.raw)
	}
	return e
}

// Encode returns message seq on the wire: the raw payload, or the msgpack
// form of the Sample.
func (e *Encoder) Encode(seq uint64) []byte {
	if !e.p.Typed {
		binary.LittleEndian.PutUint64(e.raw, seq)
		return e.raw
	}
	var err error
	if e.buf, err = e.ser.Append(e.buf[:0], e.Sample(seq)); err != nil {
		panic(err) // a Sample always encodes
	}
	return e.buf
}

// Sample returns message seq as a Sample, for systems that serialize it
// themselves (slc). Its Data is shared and must not be modified.
func (e *Encoder) Sample(seq uint64) *Sample {
	e.s.Seq, e.s.Value = seqBase+seq, sampleValue(seq)
	return &e.s
}

// Decoder checks received messages: their content and size, returning
// the sequence number for the caller to check the order. It is reused for
// every message of one receiver and is not safe for concurrent use.
type Decoder struct {
	p   *Payload
	ser codec.Serializer
	s   Sample
}

// NewDecoder returns a decoder for p's messages.
func (p *Payload) NewDecoder() *Decoder {
	d := &Decoder{p: p}
	if p.Typed {
		d.ser = msgpackSerializer()
	}
	return d
}

// Check verifies message b as it arrived and returns its sequence number.
func (d *Decoder) Check(b []byte) (uint64, error) {
	if len(b) != d.p.Size {
		return 0, fmt.Errorf("message of %d bytes, want %d", len(b), d.p.Size)
	}
	if !d.p.Typed {
		if !bytes.Equal(b[minRaw:], d.p.raw[minRaw:]) {
			return 0, fmt.Errorf("message %d: corrupted payload", binary.LittleEndian.Uint64(b))
		}
		return binary.LittleEndian.Uint64(b), nil
	}
	if err := d.ser.Unmarshal(b, &d.s); err != nil {
		return 0, fmt.Errorf("decode: %w", err)
	}
	return d.CheckSample(&d.s)
}

// CheckSample verifies a decoded Sample and returns its sequence number.
func (d *Decoder) CheckSample(s *Sample) (uint64, error) {
	seq := s.Seq - seqBase
	if s.Seq < seqBase || s.Sensor != sensorName || s.Value != sampleValue(seq) || !bytes.Equal(s.Data, d.p.data) {
		return 0, fmt.Errorf("message %d: corrupted sample", seq)
	}
	return seq, nil
}
