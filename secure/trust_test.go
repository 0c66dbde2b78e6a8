package secure

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc/internal/wire"
)

func code(err error) wire.Code {
	if pe, ok := wire.AsProtocolError(err); ok {
		return pe.Code
	}
	return 0xffff
}

func TestParseAuthorizedKeys(t *testing.T) {
	a, b, c := mustIdentity(t).PublicKey(), mustIdentity(t).PublicKey(), mustIdentity(t).PublicKey()
	data := fmt.Sprintf("# lab\n\n%s lab-camera\n\t%s\n  # indented comment\n%s\tspectrometer 2 \r\n", a, b, c)
	got, err := ParseAuthorizedKeys([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []AuthorizedKey{{a, "lab-camera"}, {b, ""}, {c, "spectrometer 2"}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d: %v, want %v", i, got[i], want[i])
		}
	}
	if s := want[0].String(); s != a.String()+" lab-camera" {
		t.Fatalf("String() = %q", s)
	}
	for _, tc := range []struct{ data, want string }{
		{"x25519:nope lab\n", "line 1: secure: invalid public key"},
		{"# ok\n" + a.String() + " lab\nbogus\n", "line 3: secure: invalid public key"},
		{a.String() + " bad\x01name\n", `line 1: invalid node name`},
	} {
		_, err := ParseAuthorizedKeys([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.data, err, tc.want)
		}
	}
}

func TestParseKnownPeers(t *testing.T) {
	a, b := mustIdentity(t).PublicKey(), mustIdentity(t).PublicKey()
	m, err := ParseKnownPeers([]byte(fmt.Sprintf("# pins\n%s cam\n%s station\n%s cam\n", a, b, a)))
	if err != nil || len(m) != 2 || m["cam"] != a || m["station"] != b {
		t.Fatalf("%v %v", m, err)
	}
	for _, tc := range []struct{ data, want string }{
		{a.String() + "\n", "line 1: a key without a node name"},
		{a.String() + " cam\n" + b.String() + " cam\n", `"cam" is listed twice with different keys`},
	} {
		if _, err := ParseKnownPeers([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.data, err, tc.want)
		}
	}
	// formatKnownPeers writes what ParseKnownPeers reads.
	back, err := ParseKnownPeers(formatKnownPeers(m))
	if err != nil || len(back) != 2 || back["cam"] != a || back["station"] != b {
		t.Fatalf("round trip: %v %v", back, err)
	}
}

func keysConfig(t *testing.T, entries ...AuthorizedKey) *Config {
	t.Helper()
	c := NewConfig()
	if err := c.SetIdentity(mustIdentity(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.AddAuthorizedKeys(entries...); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuthorizeAuthorizedKeys(t *testing.T) {
	cam, cam2, any1, any2, stranger := mustIdentity(t).PublicKey(), mustIdentity(t).PublicKey(),
		mustIdentity(t).PublicKey(), mustIdentity(t).PublicKey(), mustIdentity(t).PublicKey()
	c := keysConfig(t, AuthorizedKey{cam, "lab-camera"}, AuthorizedKey{cam2, "lab-camera"}, AuthorizedKey{any1, ""}, AuthorizedKey{any2, ""})
	for _, tc := range []struct {
		name string
		key  PublicKey
		want string // "" = accepted
	}{
		{"lab-camera", cam, ""},
		{"lab-camera", cam2, ""}, // both keys are listed with the name
		{"other", cam, `authorized only as "lab-camera", not "other"`},
		{"lab-camera", any1, `"lab-camera" is reserved for another key`},
		{"workstation", stranger, "is not in this node's authorized keys"},
		{"workstation", any1, ""},
		{"workstation", any1, ""}, // the same key again
		{"workstation", any2, `"workstation" is already used by key ` + any1.Fingerprint()},
		{"station-2", any2, ""},
	} {
		err := c.Authorize(tc.name, tc.key)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s with %s: %v", tc.name, tc.key.Fingerprint(), err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || code(err) != wire.CodeUnauthorized ||
			!errors.Is(err, ErrUnauthorized)):
			t.Errorf("%s with %s: %v, want unauthorized %q", tc.name, tc.key.Fingerprint(), err, tc.want)
		}
	}
	if err := c.admit(stranger); code(err) != wire.CodeUnauthorized {
		t.Errorf("admit(stranger) = %v", err)
	}
	if err := c.admit(cam2); err != nil {
		t.Errorf("admit(cam2) = %v", err)
	}
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestAuthorizedKeysFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "authorized_keys")
	a, b := mustIdentity(t).PublicKey(), mustIdentity(t).PublicKey()
	c := NewConfig()
	c.SetIdentity(mustIdentity(t))
	if err := c.UseAuthorizedKeysFile(path); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
	writeFile(t, path, a.String()+" cam\n", 0o644)
	if err := c.UseAuthorizedKeysFile(path); err != nil {
		t.Fatal(err)
	}
	if err := c.Authorize("cam", a); err != nil {
		t.Fatal(err)
	}
	if err := c.Authorize("b", b); code(err) != wire.CodeUnauthorized {
		t.Fatalf("b before it is listed: %v", err)
	}
	// The file is read again when it changes: b is added.
	writeFile(t, path, a.String()+" cam\n"+b.String()+"\n# more\n", 0o644)
	bump(t, path)
	if err := c.Authorize("b", b); err != nil {
		t.Fatalf("b after it was added: %v", err)
	}
	// An invalid file rejects everyone (retryably) until it is fixed.
	writeFile(t, path, "garbage\n", 0o644)
	bump(t, path)
	if err := c.Authorize("cam", a); code(err) != wire.CodeInternal || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("invalid file: %v", err)
	}
	writeFile(t, path, a.String()+" cam\n", 0o644)
	bump(t, path)
	if err := c.Authorize("cam", a); err != nil {
		t.Fatalf("fixed file: %v", err)
	}
	if err := c.Authorize("b", b); code(err) != wire.CodeUnauthorized {
		t.Fatalf("b after it was removed: %v", err)
	}
	if runtime.GOOS != "windows" {
		writeFile(t, path, a.String()+" cam\n", 0o664)
		if _, err := LoadAuthorizedKeys(path); err == nil || !strings.Contains(err.Error(), "writable by other users (mode 0664)") ||
			!strings.Contains(err.Error(), "chmod 0644") {
			t.Fatalf("group-writable file: %v", err)
		}
	}
}

// bump moves a file's modification time, so that a rewrite within the
// file system's time resolution is still seen as a change.
func bump(t *testing.T, path string) {
	t.Helper()
	bumps++
	tm := time.Now().Add(time.Duration(bumps) * time.Second)
	if err := os.Chtimes(path, tm, tm); err != nil {
		t.Fatal(err)
	}
}

var bumps int

func tofuConfig(t *testing.T, path string) *Config {
	t.Helper()
	c := NewConfig()
	c.SetIdentity(mustIdentity(t))
	if err := c.UseKnownPeers(path); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTrustOnFirstUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_peers")
	cam, impostor, station := mustIdentity(t).PublicKey(), mustIdentity(t).PublicKey(), mustIdentity(t).PublicKey()
	c := tofuConfig(t, path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the file exists before the first pin: %v", err)
	}
	if err := c.Authorize("lab-camera", cam); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("known-peers file mode %04o, want 0600", fi.Mode().Perm())
	}
	if err := c.Authorize("lab-camera", cam); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	err = c.Authorize("lab-camera", impostor)
	if code(err) != wire.CodeUnauthorized || !strings.Contains(err.Error(), "KEY CHANGED") ||
		!strings.Contains(err.Error(), cam.Fingerprint()) || !strings.Contains(err.Error(), impostor.Fingerprint()) {
		t.Fatalf("changed key: %v", err)
	}
	if err := c.Authorize("workstation", station); err != nil {
		t.Fatal(err)
	}
	// A new configuration (a restart) reads the pins back.
	c2 := tofuConfig(t, path)
	if pk, ok := c2.PinnedKey("lab-camera"); !ok || pk != cam {
		t.Fatalf("pin after restart: %v %v", pk, ok)
	}
	if err := c2.Authorize("lab-camera", impostor); !strings.Contains(fmt.Sprint(err), "KEY CHANGED") {
		t.Fatalf("changed key after restart: %v", err)
	}
	if err := c2.Authorize("workstation", station); err != nil {
		t.Fatal(err)
	}
	// Deleting a line accepts the new key (the file is read again when it
	// changes, also by the first configuration).
	data, _ := os.ReadFile(path)
	var kept []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasSuffix(l, " lab-camera") {
			kept = append(kept, l)
		}
	}
	writeFile(t, path, strings.Join(kept, "\n"), 0o600)
	bump(t, path)
	if err := c.Authorize("lab-camera", impostor); err != nil {
		t.Fatalf("after deleting the pin: %v", err)
	}
	if err := c2.Authorize("lab-camera", impostor); err != nil {
		t.Fatalf("second configuration after the re-pin: %v", err)
	}
	if runtime.GOOS != "windows" {
		writeFile(t, path, string(data), 0o666)
		if err := NewConfig().UseKnownPeers(path); err == nil || !strings.Contains(err.Error(), "writable by other users") {
			t.Fatalf("world-writable known peers: %v", err)
		}
	}
	writeFile(t, path, "not a key file\n", 0o600)
	if err := NewConfig().UseKnownPeers(path); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("invalid known peers: %v", err)
	}
	if err := NewConfig().UseKnownPeers(filepath.Join(t.TempDir(), "no", "such", "dir", "known")); err == nil ||
		!strings.Contains(err.Error(), "directory does not exist") {
		t.Fatalf("missing directory: %v", err)
	}
}

func TestConfigCombinations(t *testing.T) {
	dir := t.TempDir()
	keysPath := filepath.Join(dir, "keys")
	writeFile(t, keysPath, mustIdentity(t).PublicKey().String()+"\n", 0o600)
	known := filepath.Join(dir, "known")
	id := mustIdentity(t)
	secret := []byte("0123456789abcdef-lab")
	type step func(*Config) error
	setID := func(c *Config) error { return c.SetIdentity(id) }
	keys := func(c *Config) error { return c.AddAuthorizedKeys(AuthorizedKey{Key: id.PublicKey()}) }
	file := func(c *Config) error { return c.UseAuthorizedKeysFile(keysPath) }
	tofu := func(c *Config) error { return c.UseKnownPeers(known) }
	psk := func(c *Config) error { return c.SetNetworkSecret(secret) }
	for _, tc := range []struct {
		name  string
		steps []step
		want  string // error from a step or Validate; "" = valid
		mode  uint8
	}{
		{"identity and keys", []step{setID, keys}, "", wire.ModeNoiseXX},
		{"identity and file", []step{setID, file}, "", wire.ModeNoiseXX},
		{"identity, keys and file", []step{keys, file, setID}, "", wire.ModeNoiseXX},
		{"identity and tofu", []step{tofu, setID}, "", wire.ModeNoiseXX},
		{"secret alone", []step{psk}, "", wire.ModeNoisePSK},
		{"secret and identity", []step{psk, setID}, "", wire.ModeNoisePSK},
		{"secret, identity and keys", []step{setID, psk, keys}, "", wire.ModeNoisePSK},
		{"secret, identity and tofu", []step{tofu, setID, psk}, "", wire.ModeNoisePSK},
		{"identity alone", []step{setID}, "needs a way to trust peers", 0},
		{"keys alone", []step{keys}, "this node's identity", 0},
		{"tofu alone", []step{tofu}, "needs this node's identity", 0},
		{"secret and keys", []step{psk, keys}, "need this node's identity", 0},
		{"nothing", nil, "needs this node's identity (WithIdentity) or a network secret", 0},
		{"keys then tofu", []step{setID, keys, tofu}, "cannot be combined", 0},
		{"tofu then file", []step{setID, tofu, file}, "cannot be combined", 0},
		{"tofu then keys", []step{setID, tofu, keys}, "cannot be combined", 0},
		{"identity twice", []step{setID, setID}, "identity is given twice", 0},
		{"secret twice", []step{psk, psk}, "network secret is given twice", 0},
		{"tofu twice", []step{setID, tofu, tofu}, "given twice", 0},
		{"file twice", []step{setID, file, file}, "only one authorized keys file", 0},
		{"short secret", []step{func(c *Config) error { return c.SetNetworkSecret([]byte("short")) }}, "at least 16 bytes", 0},
		{"nil identity", []step{func(c *Config) error { return c.SetIdentity(nil) }}, "nil identity", 0},
		{"zero key", []step{setID, func(c *Config) error { return c.AddAuthorizedKeys(AuthorizedKey{}) }}, "zero", 0},
	} {
		c := NewConfig()
		var err error
		for _, s := range tc.steps {
			if err = s(c); err != nil {
				break
			}
		}
		if err == nil {
			err = c.Validate()
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && c.Mode() != tc.mode:
			t.Errorf("%s: mode %d, want %d", tc.name, c.Mode(), tc.mode)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestNetworkSecretKey(t *testing.T) {
	// The pre-shared key is HKDF-SHA256(secret, no salt, "slc network secret v1").
	c := NewConfig()
	if err := c.SetNetworkSecret([]byte("correct horse battery staple")); err != nil {
		t.Fatal(err)
	}
	// Computed independently (RFC 5869 by hand with HMAC-SHA256).
	if got, want := fmt.Sprintf("%x", c.psk[:]), "7cf4383d5eeb3f521103ce37af35c95ac251854285a505f582ac741ac52b755b"; got != want {
		t.Fatalf("pre-shared key %s, want %s", got, want)
	}
}
