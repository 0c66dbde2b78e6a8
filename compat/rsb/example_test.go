package rsb_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/slc-go/slc/compat/rsb"
)

// A Go program on an RSB socket bus: a server (an RSB bus's server is
// one of its participants) and a client, exchanging a utf-8-string event.
// Against a running RSB bus, only the Dial half is needed, with
// rsb.DefaultAddr.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	srv, err := rsb.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := rsb.Dial(ctx, srv.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	schema, data, _ := rsb.EncodeValue("hello, robot")
	now := time.Now().UnixMicro()
	err = c.Publish(ctx, &rsb.Notification{
		EventID:    rsb.EventID{Sender: rsb.UUID{0x01}, Seq: 1},
		Scope:      "/robot/speech/",
		WireSchema: schema,
		Data:       data,
		MetaData:   rsb.MetaData{CreateTime: now, SendTime: now},
	})
	if err != nil {
		log.Fatal(err)
	}
	n, err := srv.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	v, _, _ := rsb.DecodeValue(n.WireSchema, n.Data)
	fmt.Printf("%s %s %q\n", n.Scope, n.WireSchema, v)
	// Output: /robot/speech/ utf-8-string "hello, robot"
}

func ExampleEncodeValue() {
	for _, v := range []any{int32(-2), 1.5, "hé", []byte{1, 2}} {
		schema, data, _ := rsb.EncodeValue(v)
		fmt.Printf("%-12s % x\n", schema, data)
	}
	// Output:
	// int32        fe ff ff ff
	// double       00 00 00 00 00 00 f8 3f
	// utf-8-string 68 c3 a9
	// bytes        01 02
}
