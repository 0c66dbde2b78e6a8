package main

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/secure"
)

// slc in secure mode (Noise XX, then every frame sealed): each node has
// its own identity (slc.WithIdentity) and authorizes the keys of the nodes
// it talks to (slc.WithAuthorizedKeys). The identities are derived from the node names, so that the child
// process of the idle workload and this process agree on them without
// exchanging files.
func init() {
	registerSLC("slc-secure", true, "slc secure mode (Noise XX, authorized keys), typed messages, acknowledged", secureOptions)
	registerSLC("slc-secure-raw", false, "slc secure mode (Noise XX, authorized keys), SendRaw, acknowledged", secureOptions)
}

// benchNames are the names of the nodes the workloads start besides the
// idle peers ("peer-N").
var benchNames = []string{"tx", "rx-0", "rx-1", "rx-2", "rx-3", "rx-4", "rx-5", "rx-6", "rx-7", "echo-server", "echo-client", "hub"}

// benchIdentity derives the identity of a node name.
func benchIdentity(name string) (*secure.Identity, error) {
	priv := sha256.Sum256([]byte("slc bench identity " + name))
	return secure.ParseIdentity([]byte("slc private key v1\nprivate " + base64.StdEncoding.EncodeToString(priv[:]) + "\n"))
}

// secureOptions returns the options of node name: its identity, and as
// authorized keys those of every other bench node (the hub: every idle
// peer; an idle peer: the hub).
func secureOptions(name string, idlePeers int) ([]slc.Option, error) {
	id, err := benchIdentity(name)
	if err != nil {
		return nil, err
	}
	names := benchNames
	switch {
	case strings.HasPrefix(name, "peer-"):
		names = []string{"hub"}
	case name == "hub":
		names = idlePeerNames(idlePeers)
	}
	keys := make([]secure.PublicKey, 0, len(names))
	for _, n := range names {
		pid, err := benchIdentity(n)
		if err != nil {
			return nil, err
		}
		keys = append(keys, pid.PublicKey())
	}
	return []slc.Option{slc.WithIdentity(id), slc.WithAuthorizedKeys(keys...)}, nil
}
