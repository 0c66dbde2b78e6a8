package secure_test

import (
	"fmt"
	"strings"

	"github.com/slc-go/slc/secure"
)

func ExampleGenerateIdentity() {
	id, err := secure.GenerateIdentity()
	if err != nil {
		panic(err)
	}
	pk := id.PublicKey()
	// Give the public key to the peers that should trust this node; keep
	// the identity (id.Save writes it to a 0600 file).
	text := pk.String()
	back, _ := secure.ParsePublicKey(text)
	fmt.Println(strings.HasPrefix(text, "x25519:"), len(text), back == pk)
	fmt.Println(strings.HasPrefix(pk.Fingerprint(), "SHA256:"), len(pk.Fingerprint()))
	// Output:
	// true 51 true
	// true 29
}

func ExampleParseAuthorizedKeys() {
	file := `# lab machines
x25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks= lab-camera
x25519:ZK2lyHgDzQFYgx9lZWYTk1CmjSXNmBUJt9WIXXB1B3E= workstation
x25519:0nJsX0NcBr3QYKqYP1V4bN1wNl8cIl2xF+QX9GKvSzE=
`
	keys, err := secure.ParseAuthorizedKeys([]byte(file))
	if err != nil {
		panic(err)
	}
	for _, k := range keys {
		name := k.Name
		if name == "" {
			name = "(any name)"
		}
		fmt.Println(k.Key.Fingerprint(), name)
	}
	// Output:
	// SHA256:St5tK8n87gVXsTqFEu5ELw lab-camera
	// SHA256:4hjogh8EIertVIwHjrHDtA workstation
	// SHA256:BJnl77lH3rd4NChcGsJxCg (any name)
}

func ExampleParsePublicKey() {
	pk, err := secure.ParsePublicKey("x25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks=")
	if err != nil {
		panic(err)
	}
	fmt.Println(pk.Fingerprint())
	// Output: SHA256:St5tK8n87gVXsTqFEu5ELw
}
