package spread_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/slc-go/slc/compat/spread"
)

// A chat member on a Spread daemon (spread -n localhost on port 4803).
// It needs a running daemon, so it is compiled but not run.
func Example_chat() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := spread.Dial(ctx, spread.DefaultAddr, spread.WithName("alice"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Join(ctx, "chat"); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Multicast(ctx, spread.Agreed, "chat", 1, "hello"); err != nil {
		log.Fatal(err)
	}
	for {
		d, err := c.Receive(ctx)
		if err != nil {
			log.Fatal(err)
		}
		switch d := d.(type) {
		case *spread.Message:
			fmt.Printf("%s: %s\n", d.Sender, d.Body)
		case *spread.Membership:
			fmt.Println(d)
		}
	}
}

// The bytes of an Agreed multicast of "hi", message type 7, to "chat".
func ExampleAppendMessage() {
	b := spread.AppendMessage(nil, spread.Header{Type: uint32(spread.Agreed), Sender: "#alice#d1", Hint: 7 << 8},
		[]string{"chat"}, []byte("hi"))
	fmt.Printf("% x\n", b[:4])
	fmt.Printf("% x\n", b[36:48])
	fmt.Println(len(b), "bytes: 48 of header, 32 per group, the data")
	// Output:
	// 90 00 00 80
	// 01 00 00 00 80 07 00 80 02 00 00 00
	// 82 bytes: 48 of header, 32 per group, the data
}

func ExampleParseService() {
	svc, err := spread.ParseService("safe|self-discard")
	fmt.Printf("%v %#x %v\n", svc, uint16(svc), err)
	// Output: safe|self-discard 0x60 <nil>
}
