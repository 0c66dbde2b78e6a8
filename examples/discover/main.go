// Command discover shows discovery with mDNS, together with secure mode
// and supervision: a node that is secure, discovered and supervised.
//
// A camera listens, and advertises itself as "lab-camera". A workstation
// looks the name up with Discover, then connects to it by name, with the
// address "mdns:lab-camera", and sends a reading. The handshake proves
// that the camera holds the key whose fingerprint it advertised. When the
// camera stops advertising, a new lookup finds nothing. It ends by itself.
//
// Both nodes use the loopback interface only (slc.WithInterfaces("lo")),
// so no packet leaves this machine. To find nodes on the network, name
// its interfaces, or leave WithInterfaces out to use every multicast
// interface.
//
//	go run ./examples/discover
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/secure"
	"github.com/slc-go/slc/supervisor"
)

// Reading is what the workstation sends.
type Reading struct {
	Seq     int
	Celsius float64
}

func init() { slc.Register[Reading]("example.Reading") }

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	// The key files, as "slc keygen --name NAME FILE >> authorized_keys"
	// makes them, in a directory removed at the end.
	dir, err := os.MkdirTemp("", "slc-discover-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := keygen(filepath.Join(dir, "camera.key"), "lab-camera", filepath.Join(dir, "authorized_keys")); err != nil {
		return err
	}
	if err := keygen(filepath.Join(dir, "station.key"), "workstation", filepath.Join(dir, "authorized_keys")); err != nil {
		return err
	}

	// The camera: secure, supervised, listening and advertised.
	id, err := secure.LoadIdentity(filepath.Join(dir, "camera.key"))
	if err != nil {
		return err
	}
	camera, err := slc.New(slc.WithName("lab-camera"),
		slc.WithIdentity(id),
		slc.WithAuthorizedKeysFile(filepath.Join(dir, "authorized_keys")),
		slc.WithSupervisor(&supervisor.Backoff{Max: 2 * time.Second, Retries: supervisor.Forever}),
		slc.WithInterfaces("lo")) // advertise on the loopback interface only
	if err != nil {
		return err
	}
	defer camera.Close()
	if _, err := camera.Listen(ctx, "127.0.0.1:0"); err != nil {
		return err
	}
	if err := camera.Advertise("lab-camera"); err != nil {
		return err
	}
	fmt.Println("lab-camera: advertised on lo, key", id.PublicKey().Fingerprint())

	// The workstation: it knows the camera by name only.
	stationID, err := secure.LoadIdentity(filepath.Join(dir, "station.key"))
	if err != nil {
		return err
	}
	station, err := slc.New(slc.WithName("workstation"),
		slc.WithIdentity(stationID),
		slc.WithAuthorizedKeysFile(filepath.Join(dir, "authorized_keys")),
		slc.WithInterfaces("lo")) // browse on the loopback interface only
	if err != nil {
		return err
	}
	defer station.Close()

	// Look the name up, without connecting: Discover browses until its
	// context ends and returns what answered.
	lookup, cancel := context.WithTimeout(ctx, time.Second)
	found, err := station.Discover(lookup, "lab-camera")
	cancel()
	if err != nil {
		return err
	}
	for _, s := range found {
		fmt.Printf("workstation: %s is node %s at %v, key %s\n", s.Name, s.PeerID, s.Addrs, s.Fingerprint)
	}
	if len(found) != 1 {
		return fmt.Errorf("found %d services named lab-camera, want 1", len(found))
	}

	// Connect by name: the handshake must prove the advertised key.
	peer, err := station.Connect(ctx, "mdns:lab-camera")
	if err != nil {
		return err
	}
	fmt.Println("workstation: connected to", peer)
	sent, err := station.Send(ctx, Reading{Seq: 1, Celsius: 21.5}, peer)
	if err != nil {
		return err
	}
	if err := station.WaitAcknowledged(ctx, sent, peer); err != nil {
		return err
	}
	msg, err := camera.Receive(ctx)
	if err != nil {
		return err
	}
	r := msg.Body.(Reading)
	fmt.Printf("lab-camera: reading %d from %s: %.1f°C\n", r.Seq, msg.From, r.Celsius)

	// Stop advertising: the goodbye makes browsers forget the name.
	if err := camera.StopAdvertising(); err != nil {
		return err
	}
	lookup, cancel = context.WithTimeout(ctx, time.Second)
	found, err = station.Discover(lookup, "lab-camera")
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("workstation: after StopAdvertising, %d services named lab-camera\n", len(found))
	if len(found) != 0 {
		return fmt.Errorf("lab-camera is still found after StopAdvertising: %v", found)
	}
	fmt.Println("discover: found lab-camera on lo, connected by name, reading delivered")
	return nil
}

// keygen does what "slc keygen --name NAME FILE >> KEYS" does: it makes a
// key pair, writes the private key to file (mode 0600) and appends the
// public key, bound to name, to the authorized-keys file keys.
func keygen(file, name, keys string) error {
	id, err := secure.GenerateIdentity()
	if err != nil {
		return err
	}
	if err := id.Save(file); err != nil {
		return err
	}
	f, err := os.OpenFile(keys, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, secure.AuthorizedKey{Key: id.PublicKey(), Name: name}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
