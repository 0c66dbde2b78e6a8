package codec_test

import (
	"testing"

	"github.com/slc-go/slc/codec"
)

func BenchmarkMsgpackAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		s    codec.Serializer
	}{
		{"map", builtinSerializer(b, codec.Msgpack)},
		{"array", msgpackArray},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var v any = &order{ID: 42, Name: "widget", Price: 9.99, Paid: true}
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = bc.s.Append(buf[:0], v); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkMsgpackUnmarshal(b *testing.B) {
	for _, bc := range []struct {
		name string
		s    codec.Serializer
	}{
		{"map", builtinSerializer(b, codec.Msgpack)},
		{"array", msgpackArray},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data, _ := bc.s.Append(nil, &order{ID: 42, Name: "widget", Price: 9.99, Paid: true})
			var o order
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.s.Unmarshal(data, &o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMsgpackGeneric(b *testing.B) {
	mp := builtinSerializer(b, codec.Msgpack)
	data, _ := mp.Append(nil, &order{ID: 42, Name: "widget", Price: 9.99, Paid: true})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mp.Generic(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONAppend(b *testing.B) {
	js := builtinSerializer(b, codec.JSON)
	var v any = &order{ID: 42, Name: "widget", Price: 9.99, Paid: true}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = js.Append(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRegistered(b *testing.B) {
	mustRegister[order](b, "bench.order")
	mp := builtinSerializer(b, codec.Msgpack)
	data, _ := mp.Append(nil, &order{ID: 42, Name: "widget", Price: 9.99, Paid: true})
	b.ReportAllocs()
	for b.Loop() {
		v, err := codec.Decode("bench.order", mp, data)
		if err != nil {
			b.Fatal(err)
		}
		if v.(order).ID != 42 {
			b.Fatalf("Decode = %+v", v)
		}
	}
}

func BenchmarkTypeName(b *testing.B) {
	mustRegister[order](b, "bench.order")
	for _, bc := range []struct {
		name string
		v    any
	}{
		{"value", order{}},
		{"pointer", &order{}},
		{"unregistered", &unregistered{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				codec.TypeName(bc.v)
			}
		})
	}
}

func BenchmarkCompress(b *testing.B) {
	src := semiCompressible(64 << 10)
	for _, c := range builtinCompressors(b) {
		b.Run(c.Name(), func(b *testing.B) {
			buf, _ := c.Compress(nil, src)
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = c.Compress(buf[:0], src)
			}
			b.ReportMetric(float64(len(src))/float64(len(buf)), "ratio")
		})
	}
}

func BenchmarkDecompress(b *testing.B) {
	src := semiCompressible(64 << 10)
	for _, c := range builtinCompressors(b) {
		b.Run(c.Name(), func(b *testing.B) {
			comp, _ := c.Compress(nil, src)
			out := make([]byte, 0, len(src))
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if out, err = c.Decompress(out[:0], comp, len(src)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMsgpackUnmarshal1MiB decodes a struct whose []byte field holds
// 1 MiB into a new value each time, as a receiver of typed messages does.
func BenchmarkMsgpackUnmarshal1MiB(b *testing.B) {
	type blob struct {
		Seq  uint64
		Data []byte
	}
	mp := builtinSerializer(b, codec.Msgpack)
	data, err := mp.Append(nil, &blob{Seq: 1, Data: make([]byte, 1<<20)})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var v blob
		if err := mp.Unmarshal(data, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSample decodes the harness's 64-byte typed message (a
// short []byte among numbers and a string) into a new value each time,
// as a receiving connection does.
func BenchmarkDecodeSample(b *testing.B) {
	type sample struct {
		Seq    uint64
		Sensor string
		Value  float64
		Data   []byte
	}
	mustRegister[sample](b, "bench.sample")
	mp := builtinSerializer(b, codec.Msgpack)
	data, _ := mp.Append(nil, &sample{Seq: 7, Sensor: "sensor-0001", Value: 21.5, Data: make([]byte, 12)})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		v, err := codec.Decode("bench.sample", mp, data)
		if err != nil {
			b.Fatal(err)
		}
		if v.(sample).Seq != 7 {
			b.Fatalf("Decode = %+v", v)
		}
	}
}
