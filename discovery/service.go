package discovery

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
)

// DNS-SD names and the mDNS port.
const (
	// ServiceType is the DNS-SD service type slc nodes advertise.
	ServiceType = "_slc._tcp"
	// Domain is the mDNS domain.
	Domain = "local."
	// Port is the mDNS UDP port.
	Port = 5353

	serviceName = ServiceType + "." + Domain         // _slc._tcp.local.
	metaQuery   = "_services._dns-sd._udp." + Domain // service type enumeration
)

// MaxNameLen is the longest advertised name: one DNS label.
const MaxNameLen = 63

// TXT record keys. A record is "key=value"; keys are compared without
// regard to case (RFC 6763 section 6.4).
const (
	txtVers     = "txtvers" // version of this TXT layout: "1"
	txtNode     = "node"    // the node's name (its PeerID)
	txtInstance = "inst"    // the node's instance ID, 16 hex digits
	txtProto    = "proto"   // wire protocol versions: "1" or "1-2"
	txtPorts    = "ports"   // the advertised TCP listener ports, comma-separated
	txtKey      = "fp"      // the key fingerprint in secure mode
)

// maxFingerprint bounds an advertised fingerprint.
const maxFingerprint = 200

// Service is a node that answered a discovery: the name it advertises,
// its node name, the addresses to dial ("ip:port") and what its TXT
// record says.
type Service struct {
	// Name is the advertised name (the DNS-SD instance name).
	Name string `json:"name"`
	// PeerID is the node's name, as it says in its handshake.
	PeerID peer.ID `json:"peer"`
	// Addrs are the addresses to dial, "ip:port" ("[fe80::1%eth0]:port"
	// for a link-local IPv6 address), IPv4 first.
	Addrs []string `json:"addrs"`
	// Port is the TCP port of the SRV record.
	Port int `json:"port"`
	// Instance identifies the node's current run (see slc.WithInstance).
	Instance uint64 `json:"instance"`
	// Fingerprint is the fingerprint of the node's static key in secure
	// mode, "" in plain mode. Connect("mdns:NAME") checks that the key the
	// handshake proves has this fingerprint.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// ValidName reports whether name can be advertised: 1 to 63 bytes of
// UTF-8 without control characters.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("slc: empty advertised name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("slc: advertised name %q is longer than %d bytes", name, MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("slc: advertised name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("slc: advertised name %q contains a control character", name)
		}
	}
	return nil
}

// record is what a node advertises in its TXT record.
type record struct {
	node        string
	instance    uint64
	ports       []int
	protoMin    uint8
	protoMax    uint8
	fingerprint string
}

// txt renders the record as TXT strings, each escaped for miekg/dns's
// presentation format.
func (r *record) txt() []string {
	proto := strconv.Itoa(int(r.protoMin))
	if r.protoMax != r.protoMin {
		proto += "-" + strconv.Itoa(int(r.protoMax))
	}
	ports := make([]string, len(r.ports))
	for i, p := range r.ports {
		ports[i] = strconv.Itoa(p)
	}
	out := []string{
		txtVers + "=1",
		txtNode + "=" + r.node,
		txtInstance + "=" + fmt.Sprintf("%016x", r.instance),
		txtProto + "=" + proto,
		txtPorts + "=" + strings.Join(ports, ","),
	}
	if r.fingerprint != "" {
		out = append(out, txtKey+"="+r.fingerprint)
	}
	for i, s := range out {
		out[i] = escapeText(s)
	}
	return out
}

// check validates a record that is about to be advertised.
func (r *record) check() error {
	if !wire.ValidName(r.node) {
		return fmt.Errorf("slc: invalid node name %q", r.node)
	}
	if len(txtNode)+1+len(r.node) > 255 {
		return fmt.Errorf("slc: node name %q is too long to advertise (at most %d bytes)", r.node, 255-len(txtNode)-1)
	}
	if r.instance == 0 {
		return errors.New("slc: instance ID 0")
	}
	if len(r.ports) == 0 {
		return errors.New("slc: no TCP port to advertise")
	}
	if err := checkFingerprint(r.fingerprint); err != nil {
		return err
	}
	return nil
}

func checkFingerprint(fp string) error {
	if len(fp) > maxFingerprint {
		return fmt.Errorf("fingerprint longer than %d bytes", maxFingerprint)
	}
	for i := 0; i < len(fp); i++ {
		if c := fp[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("fingerprint %q has a byte outside printable ASCII", fp)
		}
	}
	return nil
}

// parseTXT reads a TXT record as miekg/dns unpacked it (escaped
// presentation strings). Unknown keys are ignored; a missing or invalid
// required key is an error.
func parseTXT(txt []string) (*record, error) {
	kv := map[string]string{}
	for _, s := range txt {
		s, ok := unescape(s)
		if !ok {
			return nil, fmt.Errorf("bad escape in TXT string %q", s)
		}
		k, v, found := strings.Cut(s, "=")
		if k == "" {
			continue // RFC 6763 6.4: strings without a key are ignored
		}
		k = strings.ToLower(k)
		if _, dup := kv[k]; dup {
			continue // 6.4: only the first occurrence counts
		}
		if !found {
			v = ""
		}
		kv[k] = v
	}
	if kv[txtVers] != "1" {
		return nil, fmt.Errorf("TXT %s=%q, want 1", txtVers, kv[txtVers])
	}
	r := &record{node: kv[txtNode], fingerprint: kv[txtKey]}
	if !wire.ValidName(r.node) {
		return nil, fmt.Errorf("TXT %s=%q is not a valid node name", txtNode, r.node)
	}
	inst, err := strconv.ParseUint(kv[txtInstance], 16, 64)
	if err != nil || inst == 0 {
		return nil, fmt.Errorf("TXT %s=%q is not a non-zero hex instance ID", txtInstance, kv[txtInstance])
	}
	r.instance = inst
	lo, hi, ok := parseProto(kv[txtProto])
	if !ok {
		return nil, fmt.Errorf("TXT %s=%q is not a protocol version range", txtProto, kv[txtProto])
	}
	r.protoMin, r.protoMax = lo, hi
	for p := range strings.SplitSeq(kv[txtPorts], ",") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("TXT %s=%q is not a list of TCP ports", txtPorts, kv[txtPorts])
		}
		r.ports = append(r.ports, n)
	}
	if err := checkFingerprint(r.fingerprint); err != nil {
		return nil, fmt.Errorf("TXT %s: %w", txtKey, err)
	}
	return r, nil
}

func parseProto(s string) (lo, hi uint8, ok bool) {
	a, b, isRange := strings.Cut(s, "-")
	x, err := strconv.ParseUint(a, 10, 8)
	if err != nil || x == 0 {
		return 0, 0, false
	}
	y := x
	if isRange {
		if y, err = strconv.ParseUint(b, 10, 8); err != nil || y < x {
			return 0, 0, false
		}
	}
	return uint8(x), uint8(y), true
}

// compatible reports whether this node can speak a protocol version the
// record offers.
func (r *record) compatible() bool {
	return r.protoMin <= wire.MaxVersion && r.protoMax >= wire.MinVersion
}

// instanceFQDN returns the DNS name of an advertised name:
// "<escaped name>._slc._tcp.local.".
func instanceFQDN(name string) string { return escapeLabel(name) + "." + serviceName }

// instanceLabel returns the advertised name of an instance FQDN (as
// miekg/dns unpacked it) of the slc service type, or ok false.
func instanceLabel(fqdn string) (string, bool) {
	if len(fqdn) <= len(serviceName)+1 || !strings.EqualFold(fqdn[len(fqdn)-len(serviceName)-1:], "."+serviceName) {
		return "", false
	}
	label := fqdn[:len(fqdn)-len(serviceName)-1]
	// The label must be one label: no unescaped dot.
	for i := 0; i < len(label); i++ {
		switch label[i] {
		case '\\':
			i++
		case '.':
			return "", false
		}
	}
	name, ok := unescape(label)
	if !ok || ValidName(name) != nil {
		return "", false
	}
	return name, true
}

// escapeLabel renders a label in presentation format: special and
// non-printable bytes are escaped.
func escapeLabel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' || c == ' ' || c == '\'' || c == '@' || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// escapeText renders a TXT string in presentation format.
func escapeText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescape undoes the presentation format: "\X" is X, "\DDD" the byte
// with that decimal value.
func unescape(s string) (string, bool) {
	if !strings.Contains(s, `\`) {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		i++
		if i >= len(s) {
			return "", false
		}
		if isDigit(s[i]) {
			if i+2 >= len(s) || !isDigit(s[i+1]) || !isDigit(s[i+2]) {
				return "", false
			}
			v := int(s[i]-'0')*100 + int(s[i+1]-'0')*10 + int(s[i+2]-'0')
			if v > 255 {
				return "", false
			}
			b = append(b, byte(v))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// sortAddrs orders dial addresses: loopback, then IPv4, then global
// IPv6, then link-local IPv6.
func sortAddrs(ips []net.IP) {
	rank := func(ip net.IP) int {
		switch {
		case ip.IsLoopback() && ip.To4() != nil:
			return 0
		case ip.IsLoopback():
			return 1
		case ip.To4() != nil:
			return 2
		case !ip.IsLinkLocalUnicast():
			return 3
		}
		return 4
	}
	slices.SortStableFunc(ips, func(a, b net.IP) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a.String(), b.String())
	})
}

// usableAddr reports whether an advertised address may be dialed: not
// unspecified, multicast or broadcast, and loopback only when it was
// learned on a loopback interface.
func usableAddr(ip net.IP, onLoopback bool) bool {
	switch {
	case ip == nil, ip.IsUnspecified(), ip.IsMulticast(), ip.Equal(net.IPv4bcast):
		return false
	case ip.IsLoopback():
		return onLoopback
	}
	return true
}
