package secure

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func mustIdentity(t testing.TB) *Identity {
	t.Helper()
	id, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPublicKeyText(t *testing.T) {
	id := mustIdentity(t)
	pk := id.PublicKey()
	s := pk.String()
	if !strings.HasPrefix(s, "x25519:") || len(s) != len("x25519:")+44 {
		t.Fatalf("String() = %q", s)
	}
	for _, in := range []string{s, strings.TrimPrefix(s, "x25519:"), "  " + s + "\n"} {
		got, err := ParsePublicKey(in)
		if err != nil || got != pk {
			t.Fatalf("ParsePublicKey(%q) = %v, %v", in, got, err)
		}
	}
	var u PublicKey
	text, _ := pk.MarshalText()
	if err := u.UnmarshalText(text); err != nil || u != pk {
		t.Fatalf("text round trip: %v %v", u, err)
	}
	for _, bad := range []string{"", "x25519:", "x25519:abc", s[:len(s)-2], s + "AA", "x25519:" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"ed25519:" + strings.TrimPrefix(s, "x25519:"), strings.ReplaceAll(s, "=", "")} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a, b := mustIdentity(t).PublicKey(), mustIdentity(t).PublicKey()
	fa := a.Fingerprint()
	if !strings.HasPrefix(fa, "SHA256:") || len(fa) != len("SHA256:")+22 {
		t.Fatalf("Fingerprint() = %q", fa)
	}
	if fa != a.Fingerprint() || fa == b.Fingerprint() {
		t.Fatalf("fingerprints not stable or not distinct: %s %s %s", fa, a.Fingerprint(), b.Fingerprint())
	}
	// A fixed key has a fixed fingerprint: SHA-256 of the 32 bytes 0x01..0x20.
	var k PublicKey
	for i := range k {
		k[i] = byte(i + 1)
	}
	if got, want := k.Fingerprint(), "SHA256:riFsLvUkejeCwTXvonmj5A"; got != want {
		t.Fatalf("Fingerprint = %s, want %s", got, want)
	}
}

func TestIdentityNotPrinted(t *testing.T) {
	id := mustIdentity(t)
	priv := base64.StdEncoding.EncodeToString(id.private[:])
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(verb, id)
		if strings.Contains(s, priv) || !strings.Contains(s, id.PublicKey().String()) {
			t.Errorf("%s prints %q", verb, s)
		}
	}
}

func TestIdentitySaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	id := mustIdentity(t)
	if err := id.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", fi.Mode().Perm())
	}
	got, err := LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.PublicKey() != id.PublicKey() || got.private != id.private {
		t.Fatal("loaded a different key")
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("slc private key v1\n")) || !bytes.Contains(data, []byte("public "+id.PublicKey().String()+"\n")) {
		t.Fatalf("file contents:\n%s", data)
	}
	if err := mustIdentity(t).Save(path); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Save over an existing file: %v", err)
	}
	if again, _ := LoadIdentity(path); again.PublicKey() != id.PublicKey() {
		t.Fatal("a refused Save changed the file")
	}
}

func TestLoadIdentityPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	if err := mustIdentity(t).Save(path); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		// Permission bits say nothing about other users there: no check.
		if _, err := LoadIdentity(path); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o601} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadIdentity(path)
		if err == nil {
			t.Fatalf("mode %04o accepted", mode)
		}
		if want := fmt.Sprintf("mode %04o", mode); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "chmod 0600") {
			t.Fatalf("mode %04o: unclear error %q", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(path); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}
	if _, err := LoadIdentity(filepath.Dir(path)); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: %v", err)
	}
	if _, err := LoadIdentity(path + ".missing"); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestParseIdentityErrors(t *testing.T) {
	id := mustIdentity(t)
	good := string(id.marshal())
	priv := base64.StdEncoding.EncodeToString(id.private[:])
	other := mustIdentity(t).PublicKey().String()
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "first line must be"},
		{"no header", "private " + priv + "\n", "first line must be"},
		{"wrong header", "slc private key v2\nprivate " + priv + "\n", "first line must be"},
		{"no private", "slc private key v1\n# nothing\n", `no "private" line`},
		{"bad base64", "slc private key v1\nprivate !!!\n", "line 2: the private key must be 32 bytes"},
		{"short key", "slc private key v1\nprivate " + base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n", "line 2: the private key must be 32 bytes"},
		{"two keys", "slc private key v1\nprivate " + priv + "\nprivate " + priv + "\n", "line 3: a second private key"},
		{"unknown item", "slc private key v1\nsecret " + priv + "\n", `line 2: unknown item "secret"`},
		{"bad public", "slc private key v1\npublic x25519:zz\nprivate " + priv + "\n", "line 2: secure: invalid public key"},
		{"mismatched public", "slc private key v1\npublic " + other + "\nprivate " + priv + "\n", "does not belong to the private key"},
	} {
		_, err := ParseIdentity([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// Comments, blank lines, CRLF and no public line are fine.
	crlf := "slc private key v1\r\n\r\n# comment\r\nprivate " + priv + "\r\n"
	for _, data := range []string{good, crlf} {
		got, err := ParseIdentity([]byte(data))
		if err != nil || got.PublicKey() != id.PublicKey() {
			t.Errorf("ParseIdentity(%q): %v", data, err)
		}
	}
}
