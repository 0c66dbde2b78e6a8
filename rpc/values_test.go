package rpc

import (
	"math"
	"reflect"
	"testing"
	"time"
)

type inner struct {
	Label string
	When  time.Time
}

type outer struct {
	N       int
	U       uint16
	F       float32
	S       string
	B       []byte
	List    []int
	Inner   inner
	Ptr     *inner
	Items   []inner
	ByName  map[string]inner
	Any     any
	Renamed string `rpc:"other"`
	Skipped string `rpc:"-"`
}

// TestTypedConversion converts structs to Args and back, with Args as a
// serializer would deliver them (numbers of other types, structs as maps,
// bytes as strings).
func TestTypedConversion(t *testing.T) {
	when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	v := outer{N: -3, U: 500, F: 1.5, S: "s", B: []byte{1, 2}, List: []int{1, 2}, Inner: inner{"in", when},
		Ptr: &inner{Label: "p"}, Items: []inner{{Label: "i0"}}, ByName: map[string]inner{"k": {Label: "v"}},
		Any: "x", Renamed: "r", Skipped: "no"}
	args := toArgs(v)
	if _, ok := args["skipped"]; ok {
		t.Error("a field tagged rpc:\"-\" was converted")
	}
	if args["other"] != "r" || args["n"] != -3 {
		t.Errorf("args = %v", args)
	}
	if m, ok := args["inner"].(map[string]any); !ok || m["label"] != "in" {
		t.Errorf("nested struct converted to %#v", args["inner"])
	}
	// As msgpack delivers them.
	wire := Args{"n": int8(-3), "u": uint64(500), "f": float64(1.5), "s": "s", "b": "\x01\x02",
		"list": []any{int64(1), uint8(2)}, "inner": map[string]any{"label": "in", "when": when},
		"ptr": map[string]any{"label": "p"}, "items": []any{map[string]any{"label": "i0"}},
		"byName": map[string]any{"k": map[string]any{"label": "v"}}, "any": "x", "other": "r"}
	var back outer
	if err := fromArgs(wire, &back); err != nil {
		t.Fatal(err)
	}
	v.Skipped = ""
	if !reflect.DeepEqual(back, v) {
		t.Errorf("fromArgs =\n%#v\nwant\n%#v", back, v)
	}
	// As JSON delivers them: every number a float64, times as text.
	jsonWire := Args{"n": float64(-3), "u": float64(500), "inner": map[string]any{"when": "2026-03-04T05:06:07Z"}}
	var fromJSON outer
	if err := fromArgs(jsonWire, &fromJSON); err != nil || fromJSON.N != -3 || fromJSON.U != 500 || !fromJSON.Inner.When.Equal(when) {
		t.Errorf("from JSON numbers: %+v, %v", fromJSON, err)
	}
	for i, bad := range []Args{{"n": "three"}, {"u": int64(-1)}, {"u": int64(70000)}, {"n": 1.5}, {"list": "x"}, {"inner": 3}} {
		var o outer
		if err := fromArgs(bad, &o); err == nil {
			t.Errorf("%d. fromArgs(%v) succeeded", i, bad)
		}
	}
}

func TestTypeMatches(t *testing.T) {
	cases := []struct {
		typ string
		v   any
		ok  bool
	}{
		{TypeInt, int64(3), true}, {TypeInt, uint8(3), true}, {TypeInt, 3.0, true}, {TypeInt, 3.5, false}, {TypeInt, "3", false},
		{TypeFloat, 3, true}, {TypeFloat, 3.5, true}, {TypeFloat, "3.5", false},
		{TypeString, "s", true}, {TypeString, []byte("s"), false},
		{TypeBytes, []byte("s"), true}, {TypeBytes, "s", true}, {TypeBytes, 1, false},
		{TypeBool, true, true}, {TypeBool, 1, false},
		{TypeList, []any{1}, true}, {TypeList, []string{"a"}, true}, {TypeList, []byte("a"), false}, {TypeList, "a", false},
		{TypeMap, map[string]any{}, true}, {TypeMap, []any{}, false}, {TypeMap, time.Time{}, false},
		{TypeAny, nil, true}, {"", struct{}{}, true},
	}
	for i, c := range cases {
		if got := typeMatches(c.typ, c.v); got != c.ok {
			t.Errorf("%d. typeMatches(%q, %#v) = %v; want %v", i, c.typ, c.v, got, c.ok)
		}
	}
}

func TestNormalize(t *testing.T) {
	a := normalize(Args{"a": int8(1), "b": uint64(math.MaxUint64), "c": uint32(7), "d": float32(0.5),
		"e": []any{uint16(2), map[string]any{"f": int16(-1)}}})
	want := Args{"a": int64(1), "b": uint64(math.MaxUint64), "c": int64(7), "d": float64(0.5),
		"e": []any{int64(2), map[string]any{"f": int64(-1)}}}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("normalize = %#v, want %#v", a, want)
	}
}

func TestLowerCamel(t *testing.T) {
	for in, want := range map[string]string{"Seconds": "seconds", "ID": "id", "OK": "ok", "HTTPPort": "httpPort",
		"TimerID": "timerID", "X": "x", "already": "already", "ÜberName": "überName"} {
		if got := lowerCamel(in); got != want {
			t.Errorf("lowerCamel(%q) = %q; want %q", in, got, want)
		}
	}
}

type Base struct{ ID int }

type withEmbedded struct {
	*Base
	Name string
}

func TestEmbeddedFields(t *testing.T) {
	if got := toArgs(withEmbedded{Name: "n"}); len(got) != 1 || got["name"] != "n" {
		t.Errorf("toArgs with a nil embedded pointer = %v", got)
	}
	var w withEmbedded
	if err := fromArgs(Args{"id": int64(7), "name": "n"}, &w); err != nil || w.Base == nil || w.ID != 7 || w.Name != "n" {
		t.Errorf("fromArgs = %+v, %v", w, err)
	}
}
