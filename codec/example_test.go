package codec_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/slc-go/slc/codec"
)

type Greeting struct {
	From string `msgpack:"from"`
	Text string `msgpack:"text"`
}

func ExampleRegisterType() {
	if err := codec.RegisterType[Greeting]("example.Greeting"); err != nil {
		panic(err)
	}
	s, _ := codec.SerializerByID(codec.Msgpack)

	// Sending side: the name travels with the encoded body.
	msg := &Greeting{From: "alice", Text: "hi"}
	name, _ := codec.TypeName(msg)
	body, _ := s.Append(nil, msg)

	// Receiving side: a registered name gives back a value of the type.
	v, err := codec.Decode(name, s, body)
	if err != nil {
		panic(err)
	}
	g := v.(Greeting)
	fmt.Println(name, g.From, g.Text)

	// An unknown name gives generic data.
	v, _ = codec.Decode("", s, body)
	fmt.Println(v)
	// Output:
	// example.Greeting alice hi
	// map[from:alice text:hi]
}

// csvSerializer encodes []string as one comma-separated line.
type csvSerializer struct{}

func (csvSerializer) Name() string   { return "example-csv" }
func (csvSerializer) Version() uint8 { return 1 }

func (csvSerializer) Append(dst []byte, v any) ([]byte, error) {
	fields, ok := v.([]string)
	if !ok {
		return dst, fmt.Errorf("csv: cannot encode %T", v)
	}
	return append(dst, strings.Join(fields, ",")...), nil
}

func (csvSerializer) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]string)
	if !ok {
		return fmt.Errorf("csv: cannot decode into %T", v)
	}
	*p = strings.Split(string(data), ",")
	return nil
}

func (c csvSerializer) Generic(data []byte) (any, error) {
	var fields []string
	err := c.Unmarshal(data, &fields)
	return fields, err
}

func ExampleRegisterSerializer() {
	// Register once, at start-up: names are process-wide, so registering
	// the same name again fails.
	id, err := codec.RegisterSerializer(csvSerializer{})
	if err != nil {
		id, _, _ = codec.SerializerByName("example-csv")
	}
	fmt.Println(id >= codec.FirstCustom)

	// Peers look serializers up by the ID in each message.
	s, _ := codec.SerializerByID(id)
	body, _ := s.Append(nil, []string{"a", "b", "c"})
	fmt.Printf("%s %s\n", s.Name(), body)

	// The hello exchange announces the name and version.
	for _, e := range codec.Serializers() {
		if e.ID == id {
			fmt.Println(e.Name, e.Version)
		}
	}
	// Output:
	// true
	// example-csv a,b,c
	// example-csv 1
}

func ExampleCompressor() {
	z, _ := codec.CompressorByID(codec.Zstd)
	body := bytes.Repeat([]byte("all work and no play makes jack a dull boy. "), 100)

	compressed, _ := z.Compress(nil, body)
	fmt.Println(len(body), "bytes compress to fewer than 100:", len(compressed) < 100)

	// The receiver states the largest message it accepts.
	out, err := z.Decompress(nil, compressed, 64<<10)
	fmt.Println(bytes.Equal(out, body), err)

	_, err = z.Decompress(nil, compressed, 1000)
	fmt.Println(errors.Is(err, codec.ErrTooLarge))
	// Output:
	// 4400 bytes compress to fewer than 100: true
	// true <nil>
	// true
}

func ExampleParseCompressor() {
	id, err := codec.ParseCompressor("zstd")
	fmt.Println(id == codec.Zstd, err)
	// The error lists the valid names.
	_, err = codec.ParseCompressor("brotli")
	fmt.Println(err != nil)
	// Output:
	// true <nil>
	// true
}
