package bus

import (
	"context"
	"testing"
	"time"

	"github.com/slc-go/slc"
)

// TestHostileMessages sends malformed bus messages to a server: it drops
// them and goes on serving.
func TestHostileMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := Join(ctx, WithAddr("127.0.0.1:0"), WithMode(ServerMode), WithNodeOptions(slc.WithName("hostile-server")))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	got := make(chan *Event, 100)
	if _, err := srv.NewListener(ctx, "/", func(e *Event) { got <- e }); err != nil {
		t.Fatal(err)
	}
	rogue, err := slc.New(slc.WithName("rogue"))
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	peer, err := rogue.Connect(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	good := appendEvent(nil, &outEvent{seq: 1, scope: "/h/", schema: SchemaString, data: []byte("ok")}, "rogue", 1, time.Now())
	badScope := appendEvent(nil, &outEvent{seq: 2, scope: "no-slash", schema: SchemaString, data: []byte("x")}, "rogue", 1, time.Now())
	reserved := appendEvent(nil, &outEvent{seq: 3, scope: "/__slc/x/", schema: SchemaString, data: []byte("x")}, "rogue", 1, time.Now())
	badUTF8 := appendEvent(nil, &outEvent{seq: 4, scope: "/h/", schema: SchemaString, data: []byte{0xff}}, "rogue", 1, time.Now())
	for _, m := range []any{
		eventsMsg{Events: []byte{1, 2, 3}},
		eventsMsg{Events: append(append([]byte{}, good...), 0, 0, 0, 9, 1)}, // a good record, then a cut one
		eventsMsg{Events: good},                                             // a duplicate of seq 1
		eventsMsg{Events: badScope},
		eventsMsg{Events: reserved},
		eventsMsg{Events: badUTF8},
		eventsMsg{Ack: 99},
		controlMsg{Scope: ctlScopes, Member: &memberWire{Name: "rogue", Listeners: []string{"/"}}}, // not joined
		controlMsg{Scope: ctlJoin}, // no member
		controlMsg{Scope: ctlJoin, Member: &memberWire{Name: "somebody-else"}},
		controlMsg{Scope: ctlMembers, Members: []memberWire{{Name: "rogue"}}, Server: "rogue"},
		controlMsg{Scope: "/__slc/unknown/"},
	} {
		if _, err := rogue.Send(ctx, m, peer); err != nil {
			t.Fatal(err)
		}
	}
	// A real participant's events still flow.
	pub, err := Join(ctx, WithAddr(srv.Addr()), WithNodeOptions(slc.WithName("hostile-pub")))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	inf, _ := pub.NewInformer("/fine/")
	inf.Publish(ctx, "fine")
	var data []any
	for len(data) == 0 || data[len(data)-1] != "fine" {
		select {
		case e := <-got:
			data = append(data, e.Data)
			if e.Err != nil {
				data[len(data)-1] = "error"
			}
		case <-ctx.Done():
			t.Fatalf("got %v: %v", data, ctx.Err())
		}
	}
	// The good record once, the undecodable one with its error, the
	// participant's event.
	if len(data) != 3 || data[0] != "ok" || data[1] != "error" {
		t.Errorf("got %v", data)
	}
	if srv.Server() != "hostile-server" || !srv.IsServer() {
		t.Error("the server stopped serving")
	}
	ps, _ := srv.Participants(ctx)
	if len(ps) != 2 {
		t.Errorf("participants %+v", ps)
	}
}
