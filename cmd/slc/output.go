package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
)

// Column widths of the text output.
const (
	nodeWidth = 11 // "workstation"
	kindWidth = 6
)

// printer writes what a command reports, one line per record: aligned
// text, or with --json one JSON object per line. Every record has a time
// relative to the printer's start, the node it concerns, a kind ("event",
// "send", "recv", ...), a message and fields:
//
//	[  12ms] workstation  event   PeerConnected peer=lab-camera addr=127.0.0.1:4321
//	{"t_ms":12,"node":"workstation","kind":"event","msg":"PeerConnected","peer":"lab-camera","addr":"127.0.0.1:4321"}
//
// It is safe for concurrent use: slc publishes events on its own
// goroutines.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	start time.Time
	lines int
	err   error // the first write error
}

func newPrinter(w io.Writer, jsonLines bool) *printer {
	return &printer{w: w, json: jsonLines, start: time.Now()}
}

// field is a named value of a record.
type field struct {
	key       string
	val       any
	omitEmpty bool
}

// f is a field that is always printed.
func f(key string, val any) field { return field{key: key, val: val} }

// opt is a field left out when its value is the zero value (false, 0, "",
// nil, an empty slice).
func opt(key string, val any) field { return field{key: key, val: val, omitEmpty: true} }

// goValue is printed in Go syntax in text (main.Reading{Seq:1, ...}) and
// as its JSON encoding in JSON lines.
type goValue struct{ v any }

// since returns the time elapsed since the printer started.
func (p *printer) since() time.Duration { return time.Since(p.start) }

// line prints one record.
func (p *printer) line(node, kind, msg string, fields ...field) {
	t := p.since()
	var b bytes.Buffer
	if p.json {
		b.WriteString(`{"t_ms":`)
		b.WriteString(strconv.FormatInt(t.Milliseconds(), 10))
		for _, kv := range [...][2]string{{"node", node}, {"kind", kind}, {"msg", msg}} {
			b.WriteString(`,"` + kv[0] + `":`)
			writeJSON(&b, kv[1])
		}
		for _, fl := range fields {
			if fl.omitEmpty && isEmpty(fl.val) {
				continue
			}
			b.WriteByte(',')
			writeJSON(&b, fl.key)
			b.WriteByte(':')
			writeJSON(&b, jsonValue(fl.val))
		}
		b.WriteString("}\n")
	} else {
		fmt.Fprintf(&b, "[%4dms] %-*s  %-*s  %s", t.Milliseconds(), nodeWidth, node, kindWidth, kind, msg)
		for _, fl := range fields {
			if fl.omitEmpty && isEmpty(fl.val) {
				continue
			}
			b.WriteString(" " + fl.key + "=" + textValue(fl.val))
		}
		b.WriteByte('\n')
	}
	p.write(b.Bytes())
}

// step starts a new part of a command's output: a heading in text, a
// record of kind "step" in JSON lines.
func (p *printer) step(title string) {
	if p.json {
		p.line("demo", "step", title)
		return
	}
	var b bytes.Buffer
	if p.lineCount() > 0 {
		b.WriteByte('\n')
	}
	b.WriteString("== " + title + "\n")
	p.write(b.Bytes())
}

func (p *printer) lineCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines
}

func (p *printer) write(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines++
	if p.err != nil {
		return
	}
	if _, err := p.w.Write(b); err != nil {
		p.err = err
	}
}

// Err returns the first error writing the output.
func (p *printer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case int:
		return x == 0
	case slc.PeerID:
		return x == ""
	case slc.MsgID:
		return x == 0
	case []slc.MsgID:
		return len(x) == 0
	}
	return false
}

// jsonValue converts values without a useful JSON encoding.
func jsonValue(v any) any {
	switch x := v.(type) {
	case error:
		return x.Error()
	case time.Duration:
		return x.String()
	case goValue:
		return x.v
	}
	return v
}

// writeJSON appends v's JSON encoding, without escaping HTML characters.
// A value that cannot be encoded (a NaN float) is written as a string.
func writeJSON(b *bytes.Buffer, v any) {
	var e bytes.Buffer
	enc := json.NewEncoder(&e)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		e.Reset()
		_ = enc.Encode(fmt.Sprint(v))
	}
	b.Write(bytes.TrimSuffix(e.Bytes(), []byte("\n")))
}

// maxListed bounds the message IDs listed in a text field.
const maxListed = 10

func textValue(v any) string {
	switch x := v.(type) {
	case string:
		return quoteIfNeeded(x)
	case slc.PeerID:
		return quoteIfNeeded(string(x))
	case error:
		return quoteIfNeeded(x.Error())
	case goValue:
		return fmt.Sprintf("%#v", x.v)
	case []slc.MsgID:
		var s []string
		for i, id := range x {
			if i == maxListed {
				s = append(s, fmt.Sprintf("...(%d more)", len(x)-maxListed))
				break
			}
			s = append(s, id.String())
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	return fmt.Sprint(v)
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") || !strconv.CanBackquote(s) {
		return strconv.Quote(s)
	}
	return s
}

// describeEvent returns the name and fields of an slc event published on
// a communicator's EventStream, or ok false for anything else on the
// stream (the actor system's own events).
func describeEvent(ev any) (name string, fields []field, ok bool) {
	switch e := ev.(type) {
	case *actors.PeerConnected:
		return "PeerConnected", []field{f("peer", e.Peer), f("addr", e.Addr),
			opt("inbound", e.Inbound), opt("resumed", e.Resumed), opt("restarted", e.Restarted)}, true
	case *actors.PeerDisconnected:
		return "PeerDisconnected", []field{f("peer", e.Peer), opt("reconnecting", e.Reconnecting),
			opt("final", e.Final), opt("undelivered", e.Undelivered), opt("err", e.Err)}, true
	case *actors.PeerReconnecting:
		return "PeerReconnecting", []field{opt("peer", e.Peer), f("addr", e.Addr), f("attempt", e.Attempt),
			f("delay", e.Delay), opt("err", e.Err)}, true
	case *actors.PeerLost:
		return "PeerLost", []field{f("peer", e.Peer), opt("addr", e.Addr), opt("undelivered", e.Undelivered),
			opt("err", e.Err)}, true
	case *actors.HandshakeRejected:
		return "HandshakeRejected", []field{f("addr", e.Addr), opt("peer", e.Peer), opt("by_remote", e.ByRemote),
			opt("err", e.Err)}, true
	case *actors.MessagesAcknowledged:
		return "MessagesAcknowledged", []field{f("peer", e.Peer), f("up_to", e.UpTo)}, true
	case *actors.ListenerFailed:
		return "ListenerFailed", []field{f("addr", e.Addr), opt("err", e.Err)}, true
	}
	return "", nil, false
}

// watchEvents prints every slc event of c as it is published, as node,
// and then passes it to also when also is not nil. The handler runs on the
// publishing goroutine, so also must be quick and must not block. The
// returned function ends the subscription.
func watchEvents(c *slc.Communicator, node string, p *printer, also func(ev any)) (stop func()) {
	es := c.ActorSystem().EventStream
	sub := es.Subscribe(func(ev any) {
		name, fields, ok := describeEvent(ev)
		if !ok {
			return
		}
		p.line(node, "event", name, fields...)
		if also != nil {
			also(ev)
		}
	})
	return func() { es.Unsubscribe(sub) }
}
