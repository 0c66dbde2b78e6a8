package testutil_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/slc-go/slc/internal/testutil"
)

// A client talks to an echo server through the fault proxy; the proxy then
// resets the connection mid-conversation, as a failing network would.
func ExampleProxy() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() { // the echo server
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()

	p, err := testutil.NewProxy(ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	buf := make([]byte, 5)
	c.Write([]byte("hello"))
	if _, err := io.ReadFull(c, buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("echoed %q\n", buf)

	p.Reset()
	_, err = io.ReadFull(c, buf)
	fmt.Println("after Reset, connection reset:", errors.Is(err, syscall.ECONNRESET))
	fmt.Println("resets:", p.Stats().Resets)
	ln.Close()
	<-done
	// Output:
	// echoed "hello"
	// after Reset, connection reset: true
	// resets: 1
}
