package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/secure"
)

func TestKeygen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "camera.key")
	r := runSLC(t, "keygen", "--name", "lab-camera", key)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	id, err := secure.LoadIdentity(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(key); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o", fi.Mode().Perm())
	}
	pk := id.PublicKey()
	want := "# wrote the private key to " + key + " (mode 0600): keep it secret\n" +
		"# public key of " + key + ", fingerprint " + pk.Fingerprint() + "\n" +
		pk.String() + " lab-camera\n"
	if r.stdout != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	// The output is a valid authorized-keys file.
	keys, err := secure.ParseAuthorizedKeys([]byte(r.stdout))
	if err != nil || len(keys) != 1 || keys[0].Key != pk || keys[0].Name != "lab-camera" {
		t.Fatalf("%v %v", keys, err)
	}

	// An existing key is not overwritten, unless asked.
	r = runSLC(t, "keygen", key)
	if r.code != 1 || !strings.Contains(r.stderr, "already exists: not overwriting a key (use --force to replace it)") {
		t.Fatalf("existing file: exit %d, stderr %q", r.code, r.stderr)
	}
	if again, _ := secure.LoadIdentity(key); again.PublicKey() != pk {
		t.Fatal("the key changed")
	}
	r = runSLC(t, "keygen", "--show", key)
	if r.code != 0 || !strings.HasSuffix(r.stdout, "fingerprint "+pk.Fingerprint()+"\n"+pk.String()+"\n") || strings.Contains(r.stdout, "wrote") {
		t.Fatalf("--show: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runSLC(t, "--json", "keygen", "--force", key)
	var obj struct {
		File, PublicKey, Fingerprint string
		Created                      bool
	}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(r.stdout, "public_key", "publickey")), &obj); err != nil || r.code != 0 {
		t.Fatalf("--json: %v exit %d\n%s%s", err, r.code, r.stdout, r.stderr)
	}
	id2, err := secure.LoadIdentity(key)
	if err != nil || obj.PublicKey != id2.PublicKey().String() || obj.Fingerprint != id2.PublicKey().Fingerprint() ||
		!obj.Created || obj.File != key || id2.PublicKey() == pk {
		t.Fatalf("--force --json: %+v %v", obj, err)
	}

	// A key file others can read is refused, with the fix.
	if runtime.GOOS != "windows" {
		os.Chmod(key, 0o644)
		r = runSLC(t, "keygen", "--show", key)
		if r.code != 1 || !strings.Contains(r.stderr, "run chmod 0600 "+key) {
			t.Fatalf("open key file: exit %d, stderr %q", r.code, r.stderr)
		}
	}
}

func TestDemoInsecureAndFlags(t *testing.T) {
	t.Parallel()
	r := runSLC(t, "demo", "--insecure")
	if r.code != 0 || !strings.Contains(r.stdout, "in plain mode (--insecure)") || strings.Contains(r.stdout, "secure:") {
		t.Fatalf("--insecure: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runSLC(t, "demo")
	if r.code != 0 || !strings.Contains(r.stdout, "two nodes in secure mode") ||
		!strings.Contains(r.stdout, "demo         summary  secure: hello and messages encrypted end to end") {
		t.Fatalf("secure demo: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runSLC(t, "--identity", "x.key", "demo")
	if r.code != 1 || !strings.Contains(r.stderr, "demo makes its own keys") {
		t.Fatalf("demo with --identity: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestSecureFlags: the global flags make every node secure.
func TestSecureFlags(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	keys := map[string]*secure.Identity{}
	var authz strings.Builder
	for _, name := range []string{"flag-a", "flag-b"} {
		id, err := secure.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = id
		if err := id.Save(filepath.Join(dir, name+".key")); err != nil {
			t.Fatal(err)
		}
		authz.WriteString(secure.AuthorizedKey{Key: id.PublicKey(), Name: name}.String() + "\n")
	}
	authzPath := filepath.Join(dir, "authorized_keys")
	os.WriteFile(authzPath, []byte(authz.String()), 0o600)
	secretPath := filepath.Join(dir, "secret")
	os.WriteFile(secretPath, []byte("a long enough network secret\n"), 0o600)
	// The two nodes prefer different ciphers (--cipher): they connect.
	ciphers := map[string]string{"flag-a": "aesgcm", "flag-b": "chacha20poly1305"}
	node := func(name string) *slc.Communicator {
		g := &globals{secure: secureFlags{identity: filepath.Join(dir, name+".key"), authorizedKeys: authzPath, secretFile: secretPath}}
		if err := g.secure.cipher.Set(ciphers[name]); err != nil {
			t.Fatal(err)
		}
		c, err := slc.New(g.nodeOptions(name)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := node("flag-a"), node("flag-b")
	addr, err := a.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := b.Connect(ctx, addr.String()); err != nil || p != "flag-a" {
		t.Fatalf("%q %v", p, err)
	}
	// A plain node cannot connect to them.
	plain, err := slc.New(slc.WithName("flag-plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Connect(ctx, addr.String()); err == nil || !strings.Contains(err.Error(), "security mode mismatch") {
		t.Fatalf("plain node: %v", err)
	}
	g := &globals{secure: secureFlags{identity: filepath.Join(dir, "flag-a.key"), secretFile: filepath.Join(dir, "missing")}}
	if _, err := slc.New(g.nodeOptions("x")...); err == nil || !strings.Contains(err.Error(), "network secret") {
		t.Fatalf("missing secret file: %v", err)
	}
}

// --cipher takes the three preferences, and refuses anything else before
// a node starts.
func TestCipherFlag(t *testing.T) {
	var f cipherFlag
	if f.String() != "auto" || f.set {
		t.Fatalf("zero value %q", f.String())
	}
	for _, v := range []string{"auto", "chacha20poly1305", "AESGCM"} {
		if err := f.Set(v); err != nil || !strings.EqualFold(f.String(), v) {
			t.Errorf("Set(%q): %v, %q", v, err, f.String())
		}
	}
	r := runSLC(t, "send", "--cipher", "rc4", "127.0.0.1:1", "x")
	if r.code == 0 || !strings.Contains(r.stderr, "want auto, chacha20poly1305 or aesgcm") {
		t.Fatalf("--cipher rc4: exit %d, stderr %q", r.code, r.stderr)
	}
}

// --secure uses the default key and authorized-keys files, and says what
// to do when they are missing; --key names the key file.
func TestSecureFlagDefaults(t *testing.T) {
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	cmd := exec.Command(slcBin, "send", "--secure", "127.0.0.1:1", "x")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no key at") || !strings.Contains(string(out), "slc keygen") {
		t.Fatalf("--secure without a key: %v: %s", err, out)
	}
	dir := filepath.Join(home, ".config", "slc")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	gen := exec.Command(slcBin, "keygen", filepath.Join(dir, "key"))
	gen.Env = env
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v: %s", err, out)
	}
	cmd = exec.Command(slcBin, "send", "--secure", "127.0.0.1:1", "x")
	cmd.Env = env
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no authorized keys at") {
		t.Fatalf("--secure without authorized keys: %v: %s", err, out)
	}
}
