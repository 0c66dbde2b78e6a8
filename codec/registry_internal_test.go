package codec

import (
	"fmt"
	"strings"
	"testing"
)

type namedCompressor struct {
	noneCompressor
	name string
}

func (c namedCompressor) Name() string { return c.name }

func TestRegistryExhausted(t *testing.T) {
	r := newRegistry("compressor", map[ID]Compressor{None: defaultNone})
	for i := int(FirstCustom); i <= 255; i++ {
		id, err := r.register(namedCompressor{name: fmt.Sprintf("c%d", i)}, false)
		if err != nil {
			t.Fatalf("register #%d error: %v", i, err)
		}
		if int(id) != i {
			t.Fatalf("register #%d = ID %d; want %d", i, id, i)
		}
	}
	if _, err := r.register(namedCompressor{name: "one-too-many"}, false); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Errorf("register past ID 255 error = %v; want one saying all IDs are taken", err)
	}
	if got := len(r.entries()); got != 1+256-int(FirstCustom) {
		t.Errorf("len(entries()) = %d; want %d", got, 1+256-int(FirstCustom))
	}
}
