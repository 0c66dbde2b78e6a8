package rpc

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Args are the arguments of a call, a result or an event, by name. Values
// are whatever the communicator's serializer carries: numbers, strings,
// booleans, byte strings, lists, maps with string keys, times. Received
// numbers are int64 (uint64 above math.MaxInt64) and float64 with
// msgpack; with json every number is a float64, byte strings are base64
// text and times RFC 3339 text. The typed layer (MethodOf, EventOf)
// converts them to the struct fields' types.
type Args = map[string]any

// typeMatches reports whether v is acceptable for an argument of type t.
func typeMatches(t string, v any) bool {
	switch t {
	case "", TypeAny:
		return true
	case TypeBool:
		_, ok := v.(bool)
		return ok
	case TypeString:
		_, ok := v.(string)
		return ok
	case TypeBytes:
		switch v.(type) {
		case []byte, string: // msgpack's bin may decode as a string
			return true
		}
		return false
	case TypeInt:
		_, ok := asInt(v)
		if !ok {
			_, ok = asUint(v)
		}
		return ok
	case TypeFloat:
		_, ok := asFloat(v)
		return ok
	}
	rv := reflect.ValueOf(v)
	switch t {
	case TypeList:
		if !rv.IsValid() {
			return false
		}
		k := rv.Kind()
		return (k == reflect.Slice || k == reflect.Array) && rv.Type().Elem().Kind() != reflect.Uint8 || isAnySlice(v)
	case TypeMap:
		if !rv.IsValid() {
			return false
		}
		return rv.Kind() == reflect.Map || rv.Kind() == reflect.Struct && rv.Type() != timeType
	}
	return false
}

func isAnySlice(v any) bool { _, ok := v.([]any); return ok }

var timeType = reflect.TypeFor[time.Time]()

// describeValue names v's kind for error messages.
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 32 {
			x = x[:32] + "..."
		}
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("bool %v", x)
	case json.Number:
		return "number " + x.String()
	}
	if f, ok := asFloat(v); ok {
		return fmt.Sprintf("number %v", f)
	}
	return fmt.Sprintf("a value of type %T", v)
}

// asInt returns v as an int64 if it is an integer (or an integral float)
// that fits.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint:
		return int64(x), uint64(x) <= math.MaxInt64
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case float32:
		return asInt(float64(x))
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case json.Number:
		i, err := x.Int64()
		return i, err == nil
	}
	return 0, false
}

// asUint returns v as a uint64 if it is a non-negative integer that fits.
func asUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint:
		return uint64(x), true
	case uint64:
		return x, true
	case float64:
		if x >= 0 && x < math.MaxUint64 && x == math.Trunc(x) {
			return uint64(x), true
		}
		return 0, false
	}
	i, ok := asInt(v)
	if !ok || i < 0 {
		return 0, false
	}
	return uint64(i), true
}

// asFloat returns v as a float64 if it is a number.
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	if i, ok := asInt(v); ok {
		return float64(i), true
	}
	if u, ok := asUint(v); ok {
		return float64(u), true
	}
	return 0, false
}

// --- the typed layer's conversions between structs and Args ---

// argName is the argument name of a struct field: its rpc tag, else its
// name with the leading capitals in lower case ("Seconds" is "seconds",
// "ID" is "id", "HTTPPort" is "httpPort"). A tag of "-" leaves the field
// out.
func argName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("rpc")
	if tag == "-" {
		return "", false
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name, true
	}
	return lowerCamel(f.Name), true
}

// lowerCamel lowers the leading capitals of a Go name; of several, the
// last stays up when a lower-case letter follows (it starts a word).
func lowerCamel(name string) string {
	rs := []rune(name)
	k := 0
	for k < len(rs) && unicode.IsUpper(rs[k]) {
		k++
	}
	if k > 1 && k < len(rs) && unicode.IsLower(rs[k]) {
		k--
	}
	for i := range k {
		rs[i] = unicode.ToLower(rs[i])
	}
	return string(rs)
}

// fieldInfo is an argument field of a struct type.
type fieldInfo struct {
	name  string
	index []int
	plain bool // a value that needs no conversion
}

// fieldCache maps a struct type to its []fieldInfo.
var fieldCache sync.Map

// structFields lists the argument fields of struct type t, in order.
func structFields(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var fields []fieldInfo
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous && f.Tag.Get("rpc") == "" && (f.Type.Kind() == reflect.Struct ||
			f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct) {
			continue // promoted fields are listed on their own
		}
		if name, ok := argName(f); ok {
			fields = append(fields, fieldInfo{name: name, index: f.Index, plain: plain(f.Type) || f.Type == bytesType})
		}
	}
	v, _ := fieldCache.LoadOrStore(t, fields)
	return v.([]fieldInfo)
}

var bytesType = reflect.TypeFor[[]byte]()

// checkStruct checks that the fields of t match the declared arguments:
// the same names, and Go types that fit the declared types.
func checkStruct(t reflect.Type, decl []Argument, what string) error {
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("rpc: %s: %v is not a struct", what, t)
	}
	fields := map[string][]int{}
	for _, f := range structFields(t) {
		fields[f.name] = f.index
	}
	var errs []string
	for _, a := range decl {
		idx, ok := fields[a.Name]
		if !ok {
			errs = append(errs, fmt.Sprintf("no field for argument %q (name a field %s, or tag it `rpc:%q`)",
				a.Name, exported(a.Name), a.Name))
			continue
		}
		ft := t.FieldByIndex(idx).Type
		if !goTypeFits(a.Type, ft) {
			errs = append(errs, fmt.Sprintf("field for argument %q has type %v, which does not fit type %s", a.Name, ft, a.Type))
		}
	}
	for name := range fields {
		if !declared(decl, name) {
			errs = append(errs, fmt.Sprintf("field for %q matches no declared argument", name))
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("rpc: %s: %v: %s", what, t, strings.Join(errs, "; "))
	}
	return nil
}

func exported(name string) string {
	r, size := utf8.DecodeRuneInString(name)
	return string(unicode.ToUpper(r)) + name[size:]
}

// goTypeFits reports whether Go type t can carry an argument of type at.
func goTypeFits(at string, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	k := t.Kind()
	switch at {
	case "", TypeAny:
		return true
	case TypeBool:
		return k == reflect.Bool
	case TypeInt:
		return k >= reflect.Int && k <= reflect.Uint64
	case TypeFloat:
		return k == reflect.Float32 || k == reflect.Float64
	case TypeString:
		return k == reflect.String
	case TypeBytes:
		return k == reflect.Slice && t.Elem().Kind() == reflect.Uint8
	case TypeList:
		return (k == reflect.Slice || k == reflect.Array) && t.Elem().Kind() != reflect.Uint8
	case TypeMap:
		return k == reflect.Map && t.Key().Kind() == reflect.String || k == reflect.Struct && t != timeType
	}
	return k == reflect.Interface
}

// toArgs converts struct v to Args, nested structs to maps.
func toArgs(v any) Args {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return Args{}
		}
		rv = rv.Elem()
	}
	m, _ := encodeValue(rv).(map[string]any)
	if m == nil {
		m = Args{}
	}
	return m
}

// encodeValue returns v in a form every serializer carries by name:
// structs become maps keyed by argument name.
func encodeValue(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Invalid:
		return nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return encodeValue(v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			return v.Interface()
		}
		fields := structFields(v.Type())
		m := make(map[string]any, len(fields))
		for _, fi := range fields {
			var f reflect.Value
			if len(fi.index) == 1 {
				f = v.Field(fi.index[0])
			} else {
				var err error
				if f, err = v.FieldByIndexErr(fi.index); err != nil {
					continue // a nil embedded pointer
				}
			}
			if fi.plain {
				m[fi.name] = f.Interface()
			} else {
				m[fi.name] = encodeValue(f)
			}
		}
		return m
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		fallthrough
	case reflect.Array:
		if plain(v.Type().Elem()) {
			return v.Interface()
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = encodeValue(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		if v.Type().Key().Kind() == reflect.String && plain(v.Type().Elem()) {
			return v.Interface()
		}
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			out[fmt.Sprint(it.Key().Interface())] = encodeValue(it.Value())
		}
		return out
	}
	return v.Interface()
}

// plain reports whether values of t need no conversion.
func plain(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// fromArgs fills the struct dst points to from args.
func fromArgs(args Args, dst any) error {
	rv := reflect.ValueOf(dst).Elem()
	for _, f := range structFields(rv.Type()) {
		v, ok := args[f.name]
		if !ok {
			continue
		}
		if err := decodeValue(v, fieldOf(rv, f.index)); err != nil {
			return fmt.Errorf("argument %q: %w", f.name, err)
		}
	}
	return nil
}

// fieldOf returns the field at index, allocating nil embedded pointers on
// the way.
func fieldOf(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

// decodeValue stores src, a value as a serializer decoded it, in dst,
// converting numbers, lists and maps.
func decodeValue(src any, dst reflect.Value) error {
	if src == nil {
		dst.SetZero()
		return nil
	}
	t := dst.Type()
	mismatch := func() error { return fmt.Errorf("cannot use %s as %v", describeValue(src), t) }
	switch t.Kind() {
	case reflect.Interface:
		sv := reflect.ValueOf(src)
		if !sv.Type().AssignableTo(t) {
			return mismatch()
		}
		dst.Set(sv)
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if err := decodeValue(src, p.Elem()); err != nil {
			return err
		}
		dst.Set(p)
	case reflect.Bool:
		b, ok := src.(bool)
		if !ok {
			return mismatch()
		}
		dst.SetBool(b)
	case reflect.String:
		switch s := src.(type) {
		case string:
			dst.SetString(s)
		case []byte:
			dst.SetString(string(s))
		default:
			return mismatch()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := asInt(src)
		if !ok || dst.OverflowInt(i) {
			return mismatch()
		}
		dst.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u, ok := asUint(src)
		if !ok || dst.OverflowUint(u) {
			return mismatch()
		}
		dst.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, ok := asFloat(src)
		if !ok {
			return mismatch()
		}
		dst.SetFloat(f)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			switch b := src.(type) {
			case []byte:
				dst.SetBytes(append([]byte(nil), b...))
				return nil
			case string:
				dst.SetBytes([]byte(b))
				return nil
			}
		}
		sv := reflect.ValueOf(src)
		if sv.Kind() != reflect.Slice && sv.Kind() != reflect.Array {
			return mismatch()
		}
		out := reflect.MakeSlice(t, sv.Len(), sv.Len())
		for i := range sv.Len() {
			if err := decodeValue(sv.Index(i).Interface(), out.Index(i)); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
		dst.Set(out)
	case reflect.Array:
		sv := reflect.ValueOf(src)
		if (sv.Kind() != reflect.Slice && sv.Kind() != reflect.Array) || sv.Len() != t.Len() {
			return mismatch()
		}
		for i := range sv.Len() {
			if err := decodeValue(sv.Index(i).Interface(), dst.Index(i)); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	case reflect.Map:
		sv := reflect.ValueOf(src)
		if sv.Kind() != reflect.Map {
			return mismatch()
		}
		out := reflect.MakeMapWithSize(t, sv.Len())
		it := sv.MapRange()
		for it.Next() {
			k := reflect.New(t.Key()).Elem()
			if err := decodeValue(it.Key().Interface(), k); err != nil {
				return fmt.Errorf("key %v: %w", it.Key().Interface(), err)
			}
			e := reflect.New(t.Elem()).Elem()
			if err := decodeValue(it.Value().Interface(), e); err != nil {
				return fmt.Errorf("key %v: %w", it.Key().Interface(), err)
			}
			out.SetMapIndex(k, e)
		}
		dst.Set(out)
	case reflect.Struct:
		if t == timeType {
			switch x := src.(type) {
			case time.Time:
				dst.Set(reflect.ValueOf(x))
			case string:
				tm, err := time.Parse(time.RFC3339Nano, x)
				if err != nil {
					return mismatch()
				}
				dst.Set(reflect.ValueOf(tm))
			default:
				return mismatch()
			}
			return nil
		}
		m, ok := stringMap(src)
		if !ok {
			return mismatch()
		}
		for _, f := range structFields(t) {
			v, ok := m[f.name]
			if !ok {
				continue
			}
			if err := decodeValue(v, fieldOf(dst, f.index)); err != nil {
				return fmt.Errorf("field %q: %w", f.name, err)
			}
		}
	default:
		return mismatch()
	}
	return nil
}

// stringMap returns src as a map with string keys.
func stringMap(src any) (map[string]any, bool) {
	switch m := src.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			ks, ok := k.(string)
			if !ok {
				return nil, false
			}
			out[ks] = v
		}
		return out, true
	}
	return nil, false
}

// normalize rewrites, in place, the numbers of values decoded by a
// serializer to the types the package documents: integers as int64
// (uint64 above math.MaxInt64), floats as float64, in nested lists and
// maps too. msgpack decodes the values of a map in a typed message with
// the width and signedness of their encoding.
func normalize(args Args) Args {
	for k, v := range args {
		args[k] = normalizeValue(v)
	}
	return args
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case int64, string, bool, float64, nil, []byte:
		return v
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint:
		return normalizeUint(uint64(x))
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return normalizeUint(x)
	case float32:
		return float64(x)
	case []any:
		for i, e := range x {
			x[i] = normalizeValue(e)
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeValue(e)
		}
		return x
	case map[any]any:
		for k, e := range x {
			x[k] = normalizeValue(e)
		}
		return x
	}
	return v
}

func normalizeUint(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return u
}
