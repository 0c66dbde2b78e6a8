package rsb

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/bus"
)

func joinBus(t testing.TB, addr, name string, mode bus.Mode) *bus.Participant {
	t.Helper()
	p, err := bus.Join(testCtx(t),
		bus.WithAddr(addr), bus.WithMode(mode),
		bus.WithNodeOptions(slc.WithName(name), slc.WithTimeout(2*time.Second),
			slc.WithHeartbeat(100*time.Millisecond, 2*time.Second)))
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestBridge: an RSB client and an slc participant talk through a bridge
// that serves the RSB socket bus: data in both directions under RSB's
// schemas, and a reply's cause mapped back to the RSB request's ID.
func TestBridge(t *testing.T) {
	ctx := testCtx(t)
	gw := joinBus(t, "127.0.0.1:0", "gateway", bus.ServerMode)
	app := joinBus(t, gw.Addr(), "app", bus.ClientMode)

	b, err := JoinBus(ctx, gw, "127.0.0.1:0", ServerMode)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := b.ep.(*Server)
	robot, err := Dial(ctx, srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer robot.Close()

	events, err := app.NewChannelListener(ctx, "/robot/")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()

	// RSB to slc: a utf-8-string event.
	req := &Notification{
		EventID: EventID{Sender: testSender, Seq: 7}, Scope: "/robot/arm/",
		WireSchema: SchemaString, Data: []byte("hello"),
		MetaData: MetaData{CreateTime: 1_700_000_000_000_000, SendTime: 1_700_000_000_000_001,
			UserInfos: []UserInfo{{Key: "k", Value: "v"}}},
	}
	if err := robot.Publish(ctx, req); err != nil {
		t.Fatal(err)
	}
	var e *bus.Event
	select {
	case e = <-events.Events():
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if e.Scope.String() != "/robot/arm/" || e.Schema != SchemaString || e.Data != "hello" ||
		e.Meta.UserInfos["k"] != "v" || e.Meta.CreateTime.UnixMicro() != req.MetaData.CreateTime {
		t.Fatalf("slc got %v (schema %q, data %#v, meta %+v)", e, e.Schema, e.Data, e.Meta)
	}

	// slc to RSB: an int64 reply caused by the request.
	inf, err := app.NewInformer("/robot/")
	if err != nil {
		t.Fatal(err)
	}
	defer inf.Close()
	reply := &bus.Event{Scope: bus.MustScope("/robot/arm/"), Data: int64(42), Causes: []bus.EventID{e.ID}}
	if err := inf.PublishEvent(ctx, reply); err != nil {
		t.Fatal(err)
	}
	n, err := robot.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{42, 0, 0, 0, 0, 0, 0, 0}
	if n.Scope != "/robot/arm/" || n.WireSchema != SchemaInt64 || !bytes.Equal(n.Data, want) {
		t.Errorf("RSB got %+v", n)
	}
	if len(n.Causes) != 1 || n.Causes[0] != req.EventID {
		t.Errorf("RSB causes = %v; want [%v]", n.Causes, req.EventID)
	}
	if n.EventID.Sender != senderUUID("app", reply.ID.Instance) || uint64(n.EventID.Seq) != reply.ID.Seq {
		t.Errorf("RSB event ID %v; want derived from %v", n.EventID, reply.ID)
	}
	// FromRSB is counted before the event is published on slc (ToRSB
	// after the send: it is checked once the bridge is closed).
	if st := b.Stats(); st.FromRSB != 1 || st.Dropped != 0 {
		t.Errorf("Stats = %+v", st)
	}

	// A scope slc cannot take is dropped and counted.
	bad := *req
	bad.Scope = "/bad scope/"
	bad.EventID.Seq++
	if err := robot.Publish(ctx, &bad); err != nil {
		t.Fatal(err)
	}
	good := *req
	good.EventID.Seq += 2
	if err := robot.Publish(ctx, &good); err != nil {
		t.Fatal(err)
	}
	// The channel also holds app's own reply (in-process delivery).
	for got := false; !got; {
		select {
		case e := <-events.Events():
			got = e.ID.Sender == gw.Name()
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if st := b.Stats(); st.Dropped != 1 {
		t.Errorf("Stats = %+v; want 1 dropped", st)
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v while running", err)
	}
	b.Close()
	if st := b.Stats(); st.ToRSB != 1 || st.FromRSB != 2 {
		t.Errorf("Stats after Close = %+v; want 1 to RSB, 2 from RSB", st)
	}
	<-b.Done()
	if err := b.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err() after Close = %v", err)
	}
}

// TestBridgeJoinsRSB: the bridge joins an RSB server as a client; events
// cross in both directions.
func TestBridgeJoinsRSB(t *testing.T) {
	ctx := testCtx(t)
	gw := joinBus(t, "127.0.0.1:0", "gateway", bus.ServerMode)
	app := joinBus(t, gw.Addr(), "app", bus.ClientMode)
	srv := startServer(t)

	b, err := JoinBus(ctx, gw, srv.Addr().String(), ClientMode)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	events, err := app.NewChannelListener(ctx, "/from-rsb/")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()

	// slc to RSB: the server gets a double; once it has, the bridge's
	// connection is registered for what the server publishes.
	inf, err := app.NewInformer("/to-rsb/")
	if err != nil {
		t.Fatal(err)
	}
	defer inf.Close()
	if _, err := inf.Publish(ctx, 2.5); err != nil {
		t.Fatal(err)
	}
	n, err := srv.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, err := DecodeValue(n.WireSchema, n.Data); err != nil || v != 2.5 || n.Scope != "/to-rsb/" {
		t.Fatalf("RSB got %+v (%v, %v)", n, v, err)
	}

	// RSB to slc.
	data, _ := EncodeAs(SchemaUint32, uint32(7))
	if err := srv.Publish(ctx, &Notification{EventID: EventID{Sender: testSender, Seq: 1}, Scope: "/from-rsb/x/",
		WireSchema: SchemaUint32, Data: data, MetaData: MetaData{CreateTime: 1, SendTime: 2}}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events.Events():
		if e.Data != uint32(7) || e.Scope.String() != "/from-rsb/x/" {
			t.Errorf("slc got %v (%#v)", e, e.Data)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

// TestNumbersAgree: slc's bus and RSB encode the numeric schemas with
// the same bytes, so the bridge passes them unchanged, and refuses data
// of the wrong size.
func TestNumbersAgree(t *testing.T) {
	for _, v := range []any{int32(-7), int64(1) << 40, uint32(7), uint64(1) << 50, float32(1.5), float64(-2.25)} {
		rsbSchema, rsbData, err := EncodeValue(v)
		if err != nil {
			t.Fatal(err)
		}
		busSchema, busData, err := bus.DefaultConverters().Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if rsbSchema != busSchema || !bytes.Equal(rsbData, busData) {
			t.Errorf("%T %v: RSB %s % x, slc bus %s % x", v, v, rsbSchema, rsbData, busSchema, busData)
		}
	}
	if _, err := checkNumber(SchemaDouble, []byte{1}); err == nil {
		t.Error("checkNumber accepted a short double")
	}
	if b, err := checkNumber(SchemaString, []byte("x")); err != nil || string(b) != "x" {
		t.Errorf("checkNumber(string) = %q, %v", b, err)
	}
}

// TestBridgeEndpointLost: when the RSB client gives up, the bridge says
// so.
func TestBridgeEndpointLost(t *testing.T) {
	ctx := testCtx(t)
	gw := joinBus(t, "127.0.0.1:0", "gateway", bus.ServerMode)
	srv, err := Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := JoinBus(ctx, gw, srv.Addr().String(), ClientMode, WithAutoRestart(false))
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	defer b.Close()
	srv.Close()
	<-b.Done()
	if err := b.Err(); !errors.Is(err, ErrLost) {
		t.Errorf("Err() = %v; want ErrLost", err)
	}
}
