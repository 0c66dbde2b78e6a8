// Package secure is slc's secure mode: Noise handshakes, encrypted
// connections, node identities and the trust decisions that go with them.
// docs/security.md specifies it and describes the threat model.
//
// # Identities
//
// A node's identity is a static Curve25519 key pair (Identity). Its public
// half (PublicKey) is what other nodes authorize or pin; its text form is
// "x25519:" and 44 characters of base64, and Fingerprint gives a short
// "SHA256:..." name for it.
//
//	id, err := secure.GenerateIdentity()
//	err = id.Save("node.key")            // a new file, mode 0600
//	id, err = secure.LoadIdentity("node.key") // refuses a file others can read
//	fmt.Println(id.PublicKey(), id.PublicKey().Fingerprint())
//
// "slc keygen FILE" does the same from the command line.
//
// # Handshake and connection
//
// Config implements peer.Security. After the 8-byte preambles, the dialing
// node (initiator) and the accepting node (responder) run
// Noise_XX_25519_<cipher>_SHA256, or Noise_XXpsk3_25519_<cipher>_SHA256
// when a network secret is set. The prologue is the initiator's preamble
// followed by the responder's, as each side sent and received them, so a
// preamble altered in transit makes the handshake fail. Every Noise message,
// handshake or transport, is framed by a 2-byte big-endian length.
//
// The cipher is AESGCM (AES-256-GCM) when both nodes prefer it, ChaChaPoly
// (ChaCha20-Poly1305) otherwise: each node says whether it does in flag
// 0x01 of its preamble (wire.PreambleAESGCM, set from Config.SetCipher;
// by default, CipherAuto, when the CPU has AES instructions, see
// HardwareAESGCM), and both compute the same answer from the two
// preambles. Older nodes send 0 there, so they always get ChaChaPoly. Since
// the preambles are the prologue, an attacker who changes a flag makes the
// handshake fail; it cannot choose the cipher. Conn.Cipher reports the
// cipher of a connection.
//
// The resulting Conn seals what the node writes into transport messages of
// up to 65519 bytes of plaintext (65535 with the tag). WriteBuffers gathers
// a whole batch of frames into as few messages as possible, so small
// messages cost a fraction of a message each; the reader decrypts straight
// into the caller's buffer. Nonces are Noise's per-direction counters: a
// record replayed, dropped, reordered or altered fails to decrypt, the
// connection fails with an *AuthError, and the session reconnects and
// resumes.
//
// # Trust
//
// A Config trusts peers in one of three ways, chosen by the slc options
// (slc.WithAuthorizedKeys, slc.WithAuthorizedKeysFile,
// slc.WithTrustOnFirstUse, slc.WithNetworkSecret):
//
//   - authorized keys: a list of public keys, each optionally with the one
//     node name it may use (ParseAuthorizedKeys describes the file);
//   - trust on first use: the first key seen for a node name is pinned in
//     a known-peers file, and a different key for that name is rejected;
//   - a network secret shared by all nodes, mixed into the handshake as
//     the Noise pre-shared key.
//
// Either way a node name is bound to a key: a second key claiming a name
// already bound is rejected. Rejections are *wire.ProtocolError values
// (slc.ProtocolError) with the unauthorized code, which the remote
// receives in an encrypted REJECT frame; errors.Is(err, ErrUnauthorized)
// and errors.Is(err, ErrAuthFailed) recognize the two kinds of failure.
package secure
