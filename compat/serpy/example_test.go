package serpy_test

import (
	"context"
	"fmt"

	"github.com/slc-go/slc/compat/serpy"
)

// A Go workstation receives typed values from an instrument that speaks
// serpy2; here the instrument is a Go client too.
func Example() {
	ctx := context.Background()
	srv, err := serpy.Listen("127.0.0.1:0", serpy.WithProtocol(serpy.V2))
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	instrument, err := serpy.Dial(ctx, srv.Addr().String(), serpy.WithProtocol(serpy.V2))
	if err != nil {
		panic(err)
	}
	defer instrument.Close()
	instrument.Send(ctx, "counts")
	instrument.Send(ctx, 1234)
	instrument.Send(ctx, 0.5)

	conn, err := srv.Accept(ctx)
	if err != nil {
		panic(err)
	}
	for range 3 {
		v, err := conn.Receive(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%T %v\n", v, v)
	}
	// Output:
	// string counts
	// int64 1234
	// float64 0.5
}

// The original serpy protocol: a mode-1 message waits for the receiver's
// acknowledgement.
func Example_v1() {
	ctx := context.Background()
	srv, _ := serpy.Listen("127.0.0.1:0", serpy.WithProtocol(serpy.V1))
	defer srv.Close()
	c, _ := serpy.Dial(ctx, srv.Addr().String(), serpy.WithProtocol(serpy.V1))
	defer c.Close()
	conn, _ := srv.Accept(ctx)

	if err := c.SendMode(ctx, "start acquisition", serpy.ModeAck); err != nil {
		panic(err)
	}
	fmt.Println("acknowledged")
	msg, _ := conn.Receive(ctx)
	fmt.Printf("%s\n", msg)
	// Output:
	// acknowledged
	// start acquisition
}

func ExampleMarshalFrame() {
	frame, _ := serpy.MarshalFrame(42)
	fmt.Printf("% x\n", frame)
	// Output: de ca fe ca fe 01 2a 00 00 00 08 00 00 00 2a 00 00 00 00 00 00 00
}

func ExampleEncodeBlock() {
	block, _ := serpy.EncodeBlock([]byte("hello"), serpy.ModeB85Ack)
	fmt.Printf("%q\n", block)
	// Output: "Xk~0{Zv\x04\x1f"
}

func ExampleFloatHex() {
	fmt.Println(serpy.FloatHex(0.1), serpy.FloatRepr(1e16))
	// Output: 0x1.999999999999ap-4 1e+16
}
