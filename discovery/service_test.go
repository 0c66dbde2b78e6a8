package discovery

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestTXTRoundTrip(t *testing.T) {
	for _, r := range []record{
		{node: "lab-camera", instance: 0x1234, ports: []int{7000}, protoMin: 1, protoMax: 1},
		{node: `odd "name" \ with é and spaces`, instance: ^uint64(0), ports: []int{1, 65535}, protoMin: 1, protoMax: 3, fingerprint: "SHA256:abc+/="},
	} {
		// Through the wire, as a responder sends it and a browser reads it.
		m := new(dns.Msg)
		m.Response = true
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: instanceFQDN("x"), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 1}, Txt: r.txt()}}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var got dns.Msg
		if err := got.Unpack(b); err != nil {
			t.Fatal(err)
		}
		back, err := parseTXT(got.Answer[0].(*dns.TXT).Txt)
		if err != nil {
			t.Fatalf("parse %q: %v", got.Answer[0].(*dns.TXT).Txt, err)
		}
		if back.node != r.node || back.instance != r.instance || !slices.Equal(back.ports, r.ports) ||
			back.protoMin != r.protoMin || back.protoMax != r.protoMax || back.fingerprint != r.fingerprint {
			t.Errorf("round trip: got %+v, want %+v", *back, r)
		}
	}
}

func TestParseTXTRejectsJunk(t *testing.T) {
	good := []string{"txtvers=1", "node=n", "inst=00000000000000ff", "proto=1", "ports=7000"}
	without := func(key string) []string {
		var out []string
		for _, s := range good {
			if !strings.HasPrefix(s, key+"=") {
				out = append(out, s)
			}
		}
		return out
	}
	with := func(kv string) []string { return append([]string{kv}, good...) } // the first occurrence counts
	if _, err := parseTXT(good); err != nil {
		t.Fatalf("good record: %v", err)
	}
	for name, txt := range map[string][]string{
		"no version":         without("txtvers"),
		"version 2":          with("txtvers=2"),
		"no node":            without("node"),
		"empty node":         with("node="),
		"invalid UTF-8 node": with(`node=\255\254`),
		"control char node":  with(`node=a\007b`),
		"no instance":        without("inst"),
		"instance 0":         with("inst=0"),
		"instance not hex":   with("inst=zz"),
		"instance too big":   with("inst=1ffffffffffffffff"),
		"no proto":           without("proto"),
		"proto 0":            with("proto=0"),
		"proto range down":   with("proto=3-1"),
		"proto junk":         with("proto=x"),
		"no ports":           without("ports"),
		"port 0":             with("ports=0"),
		"port too big":       with("ports=65536"),
		"port junk":          with("ports=80,x"),
		"fingerprint space":  with("fp=a b"),
		"fingerprint long":   with("fp=" + strings.Repeat("a", 201)),
		"bad escape":         with(`node=\2`),
	} {
		if r, err := parseTXT(txt); err == nil {
			t.Errorf("%s: %q parsed as %+v", name, txt, *r)
		}
	}
	// Keys are case-insensitive; unknown keys and key-less strings are ignored.
	r, err := parseTXT(append([]string{"NODE=upper", "=x", "future=1"}, good...))
	if err != nil || r.node != "upper" {
		t.Errorf("got %+v, %v", r, err)
	}
}

func TestInstanceNames(t *testing.T) {
	for _, name := range []string{"lab-camera", "with space", "dots.in.it", `back\slash`, "ünïcödé", `"quoted"`, strings.Repeat("x", 63)} {
		fqdn := instanceFQDN(name)
		// Through the wire, so that the name is in miekg/dns's escaping.
		m := new(dns.Msg)
		m.Answer = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: serviceName, Rrtype: dns.TypePTR, Class: dns.ClassINET}, Ptr: fqdn}}
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("%q: pack: %v", name, err)
		}
		var got dns.Msg
		if err := got.Unpack(b); err != nil {
			t.Fatal(err)
		}
		label, ok := instanceLabel(got.Answer[0].(*dns.PTR).Ptr)
		if !ok || label != name {
			t.Errorf("%q: came back as %q, %v", name, label, ok)
		}
	}
	for _, fqdn := range []string{"x._http._tcp.local.", "_slc._tcp.local.", "a.b._slc._tcp.local.", `\007._slc._tcp.local.`, "._slc._tcp.local."} {
		if label, ok := instanceLabel(fqdn); ok {
			t.Errorf("%q accepted as %q", fqdn, label)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 64), "a\x00b", "\xff"} {
		if ValidName(bad) == nil {
			t.Errorf("ValidName(%q) = nil", bad)
		}
	}
}

func TestUsableAddr(t *testing.T) {
	for _, c := range []struct {
		ip       string
		loopback bool
		want     bool
	}{
		{"127.0.0.1", true, true},
		{"127.0.0.1", false, false},
		{"10.1.2.3", false, true},
		{"0.0.0.0", true, false},
		{"224.0.0.251", false, false},
		{"255.255.255.255", false, false},
		{"fe80::1", false, true},
		{"::", false, false},
	} {
		if got := usableAddr(net.ParseIP(c.ip), c.loopback); got != c.want {
			t.Errorf("usableAddr(%s, loopback %v) = %v", c.ip, c.loopback, got)
		}
	}
}
