package main

import (
	"os"
	"runtime"
	"testing"
)

// TestChat runs two slc chat processes over pipes: a line typed on the
// listening side before anyone connects is held and delivered, lines go
// both ways, EOF ends the dialing side cleanly (its last line is flushed),
// the listening side sees it leave, and Ctrl-C ends the listening side
// cleanly.
func TestChat(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	t.Parallel()
	alice := start(t, "alice", "chat", "--listen", "127.0.0.1:0", "--name", "alice", "--json")
	addr := alice.listenAddr()
	alice.waitRecord(0, map[string]any{"kind": "info", "msg": "waiting for the other side"})
	alice.writeLine("anyone there?")
	alice.waitRecord(0, map[string]any{"kind": "info", "msg": "no one connected yet: the line is sent once someone is"})

	bob := start(t, "bob", "chat", addr, "--name", "bob", "--json")
	bob.waitRecord(0, map[string]any{"kind": "event", "msg": "PeerConnected", "peer": "alice"})
	bob.waitRecord(0, map[string]any{"node": "alice", "kind": "chat", "msg": "anyone there?"})

	bob.writeLine("hello from bob")
	alice.waitRecord(0, map[string]any{"node": "bob", "kind": "chat", "msg": "hello from bob"})
	alice.writeLine("hi bob, with  two spaces and ünïcode")
	bob.waitRecord(0, map[string]any{"node": "alice", "kind": "chat", "msg": "hi bob, with  two spaces and ünïcode"})

	// The last line is followed by EOF at once: Disconnect flushes it.
	bob.writeLine("bye now")
	bob.closeStdin()
	bob.expectExit(0)
	bob.waitRecord(0, map[string]any{"kind": "info", "msg": "bye"})
	alice.waitRecord(0, map[string]any{"node": "bob", "kind": "chat", "msg": "bye now"})
	alice.waitRecord(0, map[string]any{"kind": "event", "msg": "PeerDisconnected", "peer": "bob", "final": true})

	alice.signal(os.Interrupt)
	alice.expectExit(0)
	for _, p := range []*proc{alice, bob} {
		if s := p.stderrText(); s != "" {
			t.Errorf("%s wrote to stderr: %s", p.name, s)
		}
		if n := len(p.records(map[string]any{"kind": "event", "msg": "MessagesAcknowledged"})); n != 0 {
			t.Errorf("%s printed %d acknowledgement events; chat leaves them out", p.name, n)
		}
	}
}

// TestChatPeerLeaves checks that the dialing side ends, successfully,
// when the listening side says goodbye, even with its stdin still open.
func TestChatPeerLeaves(t *testing.T) {
	t.Parallel()
	alice := start(t, "alice", "chat", "--listen", "127.0.0.1:0", "--name", "alice", "--json")
	addr := alice.listenAddr()
	bob := start(t, "bob", "chat", addr, "--name", "bob", "--json")
	alice.waitRecord(0, map[string]any{"kind": "event", "msg": "PeerConnected", "peer": "bob"})
	alice.writeLine("closing")
	alice.closeStdin()
	alice.expectExit(0)
	bob.waitRecord(0, map[string]any{"node": "alice", "kind": "chat", "msg": "closing"})
	bob.expectExit(0)
	bob.waitRecord(0, map[string]any{"kind": "info", "msg": "the other side left"})
}
