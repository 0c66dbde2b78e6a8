package codec_test

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/slc-go/slc/codec"
)

// uniqueName returns a name not used before in this process, so tests can
// register codecs with -count greater than 1.
var nameSeq atomic.Int64

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1))
}

// upperSerializer is a toy serializer: strings, upper-cased on the wire.
type upperSerializer struct{ name string }

func (s upperSerializer) Name() string   { return s.name }
func (s upperSerializer) Version() uint8 { return 3 }
func (s upperSerializer) Append(dst []byte, v any) ([]byte, error) {
	str, ok := v.(string)
	if !ok {
		return dst, fmt.Errorf("upper: cannot encode %T", v)
	}
	return append(dst, strings.ToUpper(str)...), nil
}
func (s upperSerializer) Unmarshal(data []byte, v any) error {
	p, ok := v.(*string)
	if !ok {
		return fmt.Errorf("upper: cannot decode into %T", v)
	}
	*p = string(data)
	return nil
}
func (s upperSerializer) Generic(data []byte) (any, error) { return string(data), nil }

// copyCompressor is a toy compressor that copies.
type copyCompressor struct{ name string }

func (c copyCompressor) Name() string   { return c.name }
func (c copyCompressor) Version() uint8 { return 2 }
func (c copyCompressor) Compress(dst, src []byte) ([]byte, error) {
	return append(dst, src...), nil
}
func (c copyCompressor) Decompress(dst, src []byte, max int) ([]byte, error) {
	if len(src) > max {
		return dst, codec.ErrTooLarge
	}
	return append(dst, src...), nil
}

func TestBuiltinEntries(t *testing.T) {
	sers := codec.Serializers()
	wantSers := []codec.Entry{{codec.Raw, "raw", 1}, {codec.Msgpack, "msgpack", 1}, {codec.JSON, "json", 1}}
	if !reflect.DeepEqual(sers[:3], wantSers) {
		t.Errorf("Serializers()[:3] = %v; want %v", sers[:3], wantSers)
	}
	comps := codec.Compressors()
	wantComps := []codec.Entry{{codec.None, "none", 1}, {codec.S2, "s2", 1}, {codec.Zstd, "zstd", 1}, {codec.Gzip, "gzip", 1}}
	if !reflect.DeepEqual(comps[:4], wantComps) {
		t.Errorf("Compressors()[:4] = %v; want %v", comps[:4], wantComps)
	}
	for _, list := range [][]codec.Entry{sers, comps} {
		for i := 1; i < len(list); i++ {
			if list[i-1].ID >= list[i].ID {
				t.Errorf("entries not sorted by ID: %v", list)
			}
		}
	}
	for _, e := range wantSers {
		id, s, ok := codec.SerializerByName(e.Name)
		if !ok || id != e.ID || s.Name() != e.Name {
			t.Errorf("SerializerByName(%q) = %d, %v, %t; want %d", e.Name, id, s, ok, e.ID)
		}
	}
	for _, e := range wantComps {
		id, c, ok := codec.CompressorByName(e.Name)
		if !ok || id != e.ID || c.Name() != e.Name {
			t.Errorf("CompressorByName(%q) = %d, %v, %t; want %d", e.Name, id, c, ok, e.ID)
		}
	}
	if s, ok := codec.SerializerByID(200); ok || s != nil {
		t.Errorf("SerializerByID(200) = %v, %t; want nil, false", s, ok)
	}
	if _, _, ok := codec.CompressorByName("lz4-unknown"); ok {
		t.Errorf("CompressorByName(unknown) found something")
	}
}

func TestRegisterSerializer(t *testing.T) {
	name := uniqueName("upper")
	id, err := codec.RegisterSerializer(upperSerializer{name})
	if err != nil {
		t.Fatal(err)
	}
	if id < codec.FirstCustom {
		t.Errorf("RegisterSerializer ID = %d; want at least %d", id, codec.FirstCustom)
	}
	s, ok := codec.SerializerByID(id)
	if !ok || s.Name() != name {
		t.Errorf("SerializerByID(%d) = %v, %t; want %q", id, s, ok, name)
	}
	gotID, s, ok := codec.SerializerByName(name)
	if !ok || gotID != id || s.Name() != name {
		t.Errorf("SerializerByName(%q) = %d, %v, %t; want %d", name, gotID, s, ok, id)
	}
	found := false
	for _, e := range codec.Serializers() {
		if e.ID == id {
			found = e == codec.Entry{ID: id, Name: name, Version: 3}
		}
	}
	if !found {
		t.Errorf("Serializers() = %v; want an entry {%d %s 3}", codec.Serializers(), id, name)
	}

	id2, err := codec.RegisterSerializer(upperSerializer{uniqueName("upper")})
	if err != nil || id2 <= id {
		t.Errorf("second RegisterSerializer = %d, %v; want an ID above %d", id2, err, id)
	}

	tests := []struct {
		s    codec.Serializer
		want string
	}{
		{nil, "nil"},
		{upperSerializer{""}, "empty"},
		{upperSerializer{strings.Repeat("x", codec.MaxCodecName+1)}, "longer"},
		{upperSerializer{name}, "already registered"},
		{upperSerializer{"msgpack"}, "already registered"},
		{codec.NewMsgpack(codec.MsgpackOptions{ArrayStructs: true}), "already registered"},
	}
	for i, tt := range tests {
		if _, err := codec.RegisterSerializer(tt.s); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%d. RegisterSerializer(%v) error = %v; want one containing %q", i, tt.s, err, tt.want)
		}
	}
}

func TestRegisterCompressor(t *testing.T) {
	name := uniqueName("copy")
	id, err := codec.RegisterCompressor(copyCompressor{name})
	if err != nil {
		t.Fatal(err)
	}
	if id < codec.FirstCustom {
		t.Errorf("RegisterCompressor ID = %d; want at least %d", id, codec.FirstCustom)
	}
	if c, ok := codec.CompressorByID(id); !ok || c.Name() != name {
		t.Errorf("CompressorByID(%d) = %v, %t; want %q", id, c, ok, name)
	}
	if got, err := codec.ParseCompressor(name); err != nil || got != id {
		t.Errorf("ParseCompressor(%q) = %d, %v; want %d, nil", name, got, err, id)
	}
	for i, tt := range []struct {
		c    codec.Compressor
		want string
	}{
		{nil, "nil"},
		{copyCompressor{""}, "empty"},
		{copyCompressor{name}, "already registered"},
		{copyCompressor{"zstd"}, "already registered"},
	} {
		if _, err := codec.RegisterCompressor(tt.c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%d. RegisterCompressor(%v) error = %v; want one containing %q", i, tt.c, err, tt.want)
		}
	}
}

func TestParseCompressor(t *testing.T) {
	tests := []struct {
		in   string
		want codec.ID
	}{
		{"none", codec.None},
		{"s2", codec.S2},
		{"zstd", codec.Zstd},
		{"gzip", codec.Gzip},
	}
	for i, tt := range tests {
		if got, err := codec.ParseCompressor(tt.in); err != nil || got != tt.want {
			t.Errorf("%d. ParseCompressor(%q) = %v, %v; want %v, nil", i, tt.in, got, err, tt.want)
		}
	}
	for i, in := range []string{"", "ZSTD", "lz4-unknown"} {
		_, err := codec.ParseCompressor(in)
		if err == nil || !strings.Contains(err.Error(), "gzip, none, s2, zstd") {
			t.Errorf("%d. ParseCompressor(%q) error = %v; want one listing the names", i, in, err)
		}
	}
}

func TestRegistryConcurrent(t *testing.T) {
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 5 {
				name := uniqueName("conc")
				id, err := codec.RegisterCompressor(copyCompressor{name})
				if err != nil {
					errs <- err
					return
				}
				if c, ok := codec.CompressorByID(id); !ok || c.Name() != name {
					errs <- fmt.Errorf("CompressorByID(%d) = %v, %t right after registering %q", id, c, ok, name)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 500 {
				if _, ok := codec.CompressorByID(codec.Zstd); !ok {
					errs <- fmt.Errorf("CompressorByID(Zstd) not found")
					return
				}
				if _, _, ok := codec.SerializerByName("msgpack"); !ok {
					errs <- fmt.Errorf("SerializerByName(msgpack) not found")
					return
				}
				_ = codec.Compressors()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[codec.ID]bool{}
	for _, e := range codec.Compressors() {
		if seen[e.ID] {
			t.Errorf("ID %d listed twice", e.ID)
		}
		seen[e.ID] = true
	}
}
