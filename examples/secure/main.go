// Command secure shows slc's secure mode: nodes that prove who they are
// and talk over encrypted connections.
//
// A camera and a workstation each make a key pair, as "slc keygen" does:
// the private key goes to a file of mode 0600 and the public key, with the
// only node name it may use, to an authorized-keys file. The camera trusts
// the keys listed in that file; the workstation trusts the camera's key,
// given in code. The workstation connects and sends a reading over the
// encrypted connection. An intruder, whose key nobody listed, is refused
// during the handshake: the camera's HandshakeRejected event names the
// reason, and the intruder's Connect fails at once, without retrying.
// Then the same exchange runs with the two other ways to trust peers:
// trust on first use, and a network secret. It ends by itself.
//
//	go run ./examples/secure
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/secure"
)

// Reading is what the workstation sends.
type Reading struct {
	Seq     int
	Celsius float64
}

func init() { slc.Register[Reading]("example.Reading") }

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	// The key files live in a directory of their own, removed at the end.
	dir, err := os.MkdirTemp("", "slc-secure-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	cameraID, err := keygen(dir, "lab-camera")
	if err != nil {
		return err
	}
	stationID, err := keygen(dir, "workstation")
	if err != nil {
		return err
	}
	if err := authorizedKeys(ctx, dir, cameraID, stationID); err != nil {
		return err
	}
	if err := trustOnFirstUse(ctx, dir, cameraID, stationID); err != nil {
		return err
	}
	if err := networkSecret(ctx); err != nil {
		return err
	}
	fmt.Println("secure: 3 readings delivered encrypted; the intruder was rejected")
	return nil
}

// keygen does what "slc keygen --name NAME NAME.key >> authorized_keys"
// does: it makes a key pair, writes the private key to dir/NAME.key (mode
// 0600) and appends the public key, bound to name, to dir/authorized_keys.
func keygen(dir, name string) (*secure.Identity, error) {
	id, err := secure.GenerateIdentity()
	if err != nil {
		return nil, err
	}
	if err := id.Save(filepath.Join(dir, name+".key")); err != nil {
		return nil, err
	}
	fmt.Printf("%s: my public key has fingerprint %s\n", name, id.PublicKey().Fingerprint())
	f, err := os.OpenFile(filepath.Join(dir, "authorized_keys"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	line := secure.AuthorizedKey{Key: id.PublicKey(), Name: name}.String()
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return nil, err
	}
	return id, f.Close()
}

// authorizedKeys: the camera trusts the keys of the authorized-keys file,
// the workstation the camera's key. An intruder is refused.
func authorizedKeys(ctx context.Context, dir string, cameraID, stationID *secure.Identity) error {
	camera, err := slc.New(slc.WithName("lab-camera"),
		slc.WithIdentity(cameraID),
		slc.WithAuthorizedKeysFile(filepath.Join(dir, "authorized_keys")))
	if err != nil {
		return err
	}
	defer camera.Close()

	// Watch the camera's refusals. Handlers run on slc's goroutines and
	// must not block: hand the events to a channel.
	rejected := make(chan *actors.HandshakeRejected, 8)
	es := camera.ActorSystem().EventStream
	sub := es.Subscribe(func(ev any) {
		if r, ok := ev.(*actors.HandshakeRejected); ok {
			select {
			case rejected <- r:
			default:
			}
		}
	})
	defer es.Unsubscribe(sub)

	addr, err := camera.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}

	station, err := slc.New(slc.WithName("workstation"),
		slc.WithIdentity(stationID),
		slc.WithAuthorizedKeys(cameraID.PublicKey()))
	if err != nil {
		return err
	}
	defer station.Close()
	if err := exchange(ctx, "authorized keys", station, camera, addr.String(), 1); err != nil {
		return err
	}

	// The intruder has a key of its own, which no authorized-keys file
	// lists. It trusts the camera, so the camera is the one that refuses.
	intruderID, err := secure.GenerateIdentity()
	if err != nil {
		return err
	}
	intruder, err := slc.New(slc.WithName("intruder"),
		slc.WithIdentity(intruderID),
		slc.WithAuthorizedKeys(cameraID.PublicKey()))
	if err != nil {
		return err
	}
	defer intruder.Close()
	_, err = intruder.Connect(ctx, addr.String())
	if !errors.Is(err, secure.ErrUnauthorized) {
		return fmt.Errorf("the intruder's Connect returned %v, want an unauthorized key", err)
	}
	fmt.Println("intruder: connect failed:", err)
	select {
	case r := <-rejected:
		fmt.Printf("lab-camera: HandshakeRejected, connection from %s: %v\n", r.Addr, r.Err)
	case <-ctx.Done():
		return fmt.Errorf("no HandshakeRejected event: %w", ctx.Err())
	}
	if n := camera.Pending(); n != 0 {
		return fmt.Errorf("the camera has %d messages waiting; want none from the intruder", n)
	}
	return nil
}

// trustOnFirstUse: the workstation accepts the camera's key the first
// time it meets "lab-camera" and pins it in a known-peers file; a
// different key under that name would then be refused.
func trustOnFirstUse(ctx context.Context, dir string, cameraID, stationID *secure.Identity) error {
	camera, err := slc.New(slc.WithName("lab-camera"),
		slc.WithIdentity(cameraID),
		slc.WithAuthorizedKeys(stationID.PublicKey()))
	if err != nil {
		return err
	}
	defer camera.Close()
	addr, err := camera.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}

	station, err := slc.New(slc.WithName("workstation"),
		slc.WithIdentity(stationID),
		slc.WithTrustOnFirstUse(filepath.Join(dir, "known_peers")))
	if err != nil {
		return err
	}
	defer station.Close()
	if err := exchange(ctx, "trust on first use", station, camera, addr.String(), 2); err != nil {
		return err
	}
	pinned, err := os.ReadFile(filepath.Join(dir, "known_peers"))
	if err != nil {
		return err
	}
	pins, err := secure.ParseKnownPeers(pinned)
	if err != nil {
		return err
	}
	fmt.Printf("workstation: pinned lab-camera's key %s in known_peers\n", pins["lab-camera"].Fingerprint())
	return nil
}

// networkSecret: every node that knows the secret may connect, under any
// name; each process makes a new key pair.
func networkSecret(ctx context.Context) error {
	secret := []byte("a long random secret, shared by all the lab's nodes")
	camera, err := slc.New(slc.WithName("lab-camera"), slc.WithNetworkSecret(secret))
	if err != nil {
		return err
	}
	defer camera.Close()
	addr, err := camera.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	node, err := slc.New(slc.WithName("microscope"), slc.WithNetworkSecret(secret))
	if err != nil {
		return err
	}
	defer node.Close()
	return exchange(ctx, "network secret", node, camera, addr.String(), 3)
}

// exchange connects from to the node listening at addr, sends a reading,
// and receives it on to.
func exchange(ctx context.Context, mode string, from, to *slc.Communicator, addr string, seq int) error {
	peer, err := from.Connect(ctx, addr)
	if err != nil {
		return err
	}
	id, err := from.Send(ctx, Reading{Seq: seq, Celsius: 20 + float64(seq)/2}, peer)
	if err != nil {
		return err
	}
	if err := from.WaitAcknowledged(ctx, id, peer); err != nil {
		return err
	}
	msg, err := to.Receive(ctx)
	if err != nil {
		return err
	}
	r := msg.Body.(Reading)
	fmt.Printf("%s: reading %d from %s, %.1f°C (%s)\n", to.Name(), r.Seq, msg.From, r.Celsius, mode)
	return nil
}
