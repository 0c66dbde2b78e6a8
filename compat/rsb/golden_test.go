package rsb

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

// unhexs decodes hex written with spaces and comments ("# ..." to the end
// of a line).
func unhexs(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		clean.WriteString(strings.ReplaceAll(strings.ReplaceAll(line, " ", ""), "\t", ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("bad hex: %v", err)
	}
	return b
}

var testSender = UUID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

// Golden notifications, written by hand from rsb-protocol's .proto files
// and the protobuf encoding rules: tag = field<<3 | wire type, with wire
// type 0 (varint) or 2 (length-delimited).
var goldenNotifications = []struct {
	name string
	n    Notification
	hex  string
}{
	{
		name: "minimal",
		n: Notification{
			EventID:    EventID{Sender: testSender, Seq: 5},
			Scope:      "/a/",
			WireSchema: "utf-8-string",
			Data:       []byte("hi"),
			MetaData:   MetaData{CreateTime: 1, SendTime: 2},
		},
		hex: `
			32 03 2f612f                         # 6 scope "/a/"
			3a 0c 7574662d382d737472696e67       # 7 wire_schema "utf-8-string"
			4a 02 6869                           # 9 data "hi"
			7a 04 10 01 18 02                    # 15 meta_data {create_time 1, send_time 2}
			e206 14                              # 108 event_id, 20 bytes
			   0a 10 00112233445566778899aabbccddeeff  # 1 sender_id
			   10 05                             # 2 sequence_number 5
		`,
	},
	{
		name: "full",
		n: Notification{
			EventID:    EventID{Sender: testSender, Seq: 300},
			Scope:      "/",
			Method:     "REQUEST",
			WireSchema: "bytes",
			Data:       []byte{0x00, 0xff},
			Causes:     []EventID{{Sender: testSender, Seq: 1}},
			MetaData: MetaData{
				CreateTime: 1000, SendTime: 1001, ReceiveTime: 1002, DeliverTime: 1003,
				UserTimes: []UserTime{{Key: "t", Timestamp: 7}},
				UserInfos: []UserInfo{{Key: "k", Value: "v"}},
			},
		},
		hex: `
			32 01 2f                             # 6 scope "/"
			3a 05 6279746573                     # 7 wire_schema "bytes"
			4a 02 00ff                           # 9 data
			6a 14 0a10 00112233445566778899aabbccddeeff 1001  # 13 causes {sender, seq 1}
			72 07 52455155455354                 # 14 method "REQUEST"
			7a 1b                                # 15 meta_data, 27 bytes
			   10 e807  18 e907  20 ea07  28 eb07  # create..deliver 1000..1003
			   32 05 0a0174 1007                 # 6 user_times {key "t", timestamp 7}
			   3a 06 0a016b 120176               # 7 user_infos {key "k", value "v"}
			e206 15                              # 108 event_id, 21 bytes
			   0a 10 00112233445566778899aabbccddeeff
			   10 ac02                           # sequence_number 300
		`,
	},
}

func TestGoldenNotificationEncode(t *testing.T) {
	for i, g := range goldenNotifications {
		want := unhexs(t, g.hex)
		if got := g.n.Marshal(); !bytes.Equal(got, want) {
			t.Errorf("%d. %s: Marshal() =\n%x\nwant\n%x", i, g.name, got, want)
		}
		frame := AppendFrame(nil, &g.n)
		if len(frame) != 4+len(want) || frame[0] != byte(len(want)) || frame[1] != 0 || frame[2] != 0 || frame[3] != 0 {
			t.Errorf("%d. %s: frame prefix % x; want uint32 LE %d", i, g.name, frame[:4], len(want))
		}
	}
}

func TestGoldenNotificationDecode(t *testing.T) {
	for i, g := range goldenNotifications {
		var n Notification
		if err := n.Unmarshal(unhexs(t, g.hex)); err != nil {
			t.Fatalf("%d. %s: Unmarshal: %v", i, g.name, err)
		}
		if !notificationsEqual(&n, &g.n) {
			t.Errorf("%d. %s: Unmarshal = %+v; want %+v", i, g.name, n, g.n)
		}
	}
}

func notificationsEqual(a, b *Notification) bool {
	return bytes.Equal(a.Marshal(), b.Marshal())
}

func TestDecodeProtobufLiberties(t *testing.T) {
	// Fields in any order, unknown fields (here 10 varint, 11 bytes, 99
	// fixed32 and fixed64), and an event_id given in two parts.
	b := unhexs(t, `
		e206 12 0a10 00112233445566778899aabbccddeeff   # event_id part 1: sender
		50 07                                          # 10: unknown varint
		5a 01 78                                       # 11: unknown bytes
		9d06 01020304                                  # 99: unknown fixed32
		99 06 0102030405060708                         # 99: unknown fixed64
		32 02 2f78                                     # scope "/x"
		e206 02 1009                                   # event_id part 2: seq 9
	`)
	var n Notification
	if err := n.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if n.Scope != "/x" || n.EventID != (EventID{Sender: testSender, Seq: 9}) {
		t.Errorf("got %+v", n)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, hex string
	}{
		{"no event_id", `32 01 2f`},
		{"event_id without seq", `e206 12 0a10 00112233445566778899aabbccddeeff`},
		{"short sender", `e206 05 0a01 00 1001`},
		{"scope as varint", `30 01 e206 14 0a10 00112233445566778899aabbccddeeff 1001`},
		{"truncated length", `32 05 2f`},
		{"truncated varint", `e2`},
		{"meta without send_time", `7a 02 1001 e206 14 0a10 00112233445566778899aabbccddeeff 1001`},
		{"user info without value", `7a 09 1001 1802 3a03 0a016b e206 14 0a10 00112233445566778899aabbccddeeff 1001`},
		{"bad cause", `6a 02 1001 e206 14 0a10 00112233445566778899aabbccddeeff 1001`},
		{"field 0", `00 00`},
	}
	for i, tt := range tests {
		var n Notification
		err := n.Unmarshal(unhexs(t, tt.hex))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%d. Unmarshal(%s) = %v; want ErrMalformed", i, tt.name, err)
		}
	}
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		max  int
		want []byte
		err  error
	}{
		{"empty stream", nil, 0, nil, io.EOF},
		{"one frame", []byte{2, 0, 0, 0, 'h', 'i'}, 0, []byte("hi"), nil},
		{"empty frame", []byte{0, 0, 0, 0}, 0, []byte{}, nil},
		{"short prefix", []byte{2, 0}, 0, nil, io.ErrUnexpectedEOF},
		{"short body", []byte{3, 0, 0, 0, 'h'}, 0, nil, io.ErrUnexpectedEOF},
		{"too large", []byte{5, 0, 0, 0}, 4, nil, ErrFrameTooLarge},
		{"4 GiB", []byte{0xff, 0xff, 0xff, 0xff}, 0, nil, ErrFrameTooLarge},
	}
	for i, tt := range tests {
		got, err := ReadFrame(bytes.NewReader(tt.in), tt.max)
		if !errors.Is(err, tt.err) || !bytes.Equal(got, tt.want) {
			t.Errorf("%d. ReadFrame(%s) = %q, %v; want %q, %v", i, tt.name, got, err, tt.want, tt.err)
		}
	}
}

func TestUUID(t *testing.T) {
	s := testSender.String()
	if s != "00112233-4455-6677-8899-aabbccddeeff" {
		t.Errorf("String() = %q", s)
	}
	u, err := ParseUUID(strings.ToUpper(s))
	if err != nil || u != testSender {
		t.Errorf("ParseUUID(%q) = %v, %v", s, u, err)
	}
	for _, bad := range []string{"", "00112233-4455-6677-8899-aabbccddeef", "0011223344556677-8899-aabbccddeeff0", "g0112233-4455-6677-8899-aabbccddeeff"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q) succeeded", bad)
		}
	}
}
