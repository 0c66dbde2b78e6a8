package store_test

import (
	"fmt"
	"os"

	"github.com/slc-go/slc/store"
)

// A store outlives the process: its identity is the same when it is
// opened again, and Inspect shows what it keeps.
func Example() {
	dir, err := os.MkdirTemp("", "slc-store-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	st, err := store.Open(dir, "lab-camera", store.Options{Sync: store.SyncBatch})
	if err != nil {
		panic(err)
	}
	first := st.Instance()
	st.Close()

	st, err = store.Open(dir, "", store.Options{}) // "" accepts the stored name
	if err != nil {
		panic(err)
	}
	fmt.Println(st.Name(), st.Instance() == first)
	st.Close()

	r, err := store.Inspect(dir)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Name, len(r.Out), len(r.Damage))
	// Output:
	// lab-camera true
	// lab-camera 0 0
}
