// The typed decoder of the plain-data wire (what it checks: see wire.go).
package main

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
)

// ---------------------------------------------------------------------------------------- decoding

type rrtfDec struct {
	data []byte
	pos  int
}

func (d *rrtfDec) number() (string, error) {
	end := len(d.data)
	if end > d.pos+rrtfNumberChars+1 {
		end = d.pos + rrtfNumberChars + 1
	}
	for i := d.pos; i < end; i++ {
		if d.data[i] == ';' {
			text := string(d.data[d.pos:i])
			d.pos = i + 1
			return text, nil
		}
	}
	return "", errors.New("number too long or unterminated")
}

func (d *rrtfDec) integer() (string, error) {
	text, err := d.number()
	if err != nil {
		return "", err
	}
	digits := text
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" {
		return "", errors.New("bad integer")
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("bad integer %q", text)
		}
	}
	return text, nil
}

func (d *rrtfDec) float(bits int) (float64, error) {
	text, err := d.number()
	if err != nil {
		return 0, err
	}
	switch text {
	case "nan":
		return math.NaN(), nil
	case "inf":
		return math.Inf(1), nil
	case "-inf":
		return math.Inf(-1), nil
	}
	for _, c := range []byte(text) { // decimals only: no hexadecimal, no "Infinity", no underscores
		if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			return 0, fmt.Errorf("bad float %q", text)
		}
	}
	f, err := strconv.ParseFloat(text, bits) // a float32 out of range is an error, not an infinity
	if err != nil {
		return 0, fmt.Errorf("bad float %q for float%d", text, bits)
	}
	return f, nil
}

func (d *rrtfDec) count() (int, error) {
	n := 0
	for i := d.pos; i < len(d.data) && i <= d.pos+10; i++ {
		c := d.data[i]
		if c == ':' && i > d.pos {
			d.pos = i + 1
			if n > len(d.data)-d.pos { // every item takes at least one byte
				return 0, errors.New("length beyond the frame")
			}
			return n, nil
		}
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return 0, errors.New("bad length")
}

// top decodes one value of type t and turns any reflect panic (an unhashable map key) into an error.
func (d *rrtfDec) top(t reflect.Type, depth int) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return d.value(t, depth)
}

func (d *rrtfDec) value(t reflect.Type, depth int) (reflect.Value, error) {
	if depth > rrtfDynamicDepth {
		return reflect.Value{}, errors.New("nested too deeply")
	}
	if d.pos >= len(d.data) {
		return reflect.Value{}, errors.New("truncated")
	}
	tag := d.data[d.pos]
	d.pos++
	if t.Kind() == reflect.Interface {
		return d.dynamic(tag, t, depth)
	}
	out := reflect.New(t).Elem()
	k := t.Kind()
	switch {
	case tag == 'n' && (k == reflect.Slice || k == reflect.Map):
		return out, nil
	case (tag == 'T' || tag == 'F') && k == reflect.Bool:
		out.SetBool(tag == 'T')
		return out, nil
	case tag == 'i' && k >= reflect.Int && k <= reflect.Int64, tag == 'c' && k == reflect.Int32:
		text, err := d.integer()
		if err != nil {
			return out, err
		}
		x, err := strconv.ParseInt(text, 10, t.Bits())
		if err != nil {
			return out, fmt.Errorf("%s does not fit a %s", text, t)
		}
		out.SetInt(x)
		return out, nil
	case tag == 'i' && k >= reflect.Uint && k <= reflect.Uintptr:
		text, err := d.integer()
		if err != nil {
			return out, err
		}
		x, err := strconv.ParseUint(text, 10, t.Bits())
		if err != nil {
			return out, fmt.Errorf("%s does not fit a %s", text, t)
		}
		out.SetUint(x)
		return out, nil
	case tag == 'd' && (k == reflect.Float32 || k == reflect.Float64):
		f, err := d.float(t.Bits())
		out.SetFloat(f)
		return out, err
	case tag == 's' && k == reflect.String:
		n, err := d.count()
		if err != nil {
			return out, err
		}
		out.SetString(string(d.data[d.pos : d.pos+n]))
		d.pos += n
		return out, nil
	case tag == 'l' && (k == reflect.Slice || k == reflect.Array):
		n, err := d.count()
		if err != nil {
			return out, err
		}
		if k == reflect.Array && n != t.Len() {
			return out, fmt.Errorf("%d items for a %s", n, t)
		}
		if k == reflect.Slice {
			out = reflect.MakeSlice(t, n, n)
		}
		for i := 0; i < n; i++ {
			item, err := d.value(t.Elem(), depth+1)
			if err != nil {
				return out, err
			}
			out.Index(i).Set(item)
		}
		return out, nil
	case tag == 'm' && k == reflect.Map:
		n, err := d.count()
		if err != nil {
			return out, err
		}
		out = reflect.MakeMapWithSize(t, n)
		for i := 0; i < n; i++ {
			key, err := d.value(t.Key(), depth+1)
			if err != nil {
				return out, err
			}
			item, err := d.value(t.Elem(), depth+1)
			if err != nil {
				return out, err
			}
			out.SetMapIndex(key, item)
		}
		return out, nil
	}
	return out, fmt.Errorf("expected a %s, got tag %q", t, tag)
}

// dynamic: an interface{} value by its tag (nil, bool, int, float64, string, rune). Lists and maps whose
// items all have one Go type free of interfaces become slices and maps of it ([]string, [][]int,
// map[rune]int), others []interface{} / map[interface{}]interface{}; a tuple becomes an array likewise.
// The candidate's side refuses a result this would rebuild as another type (rrtfEnc.strict).
func (d *rrtfDec) dynamic(tag byte, t reflect.Type, depth int) (reflect.Value, error) {
	out := reflect.New(t).Elem()
	if t.NumMethod() != 0 {
		return out, fmt.Errorf("no plain-data form for %s", t)
	}
	var v reflect.Value
	switch tag {
	case 'n':
		return out, nil
	case 'T', 'F':
		v = reflect.ValueOf(tag == 'T')
	case 'i', 'c':
		text, err := d.integer()
		if err != nil {
			return out, err
		}
		bits := 64
		if tag == 'c' {
			bits = 32
		}
		x, err := strconv.ParseInt(text, 10, bits)
		if err != nil {
			return out, fmt.Errorf("%s does not fit", text)
		}
		v = reflect.ValueOf(int(x))
		if tag == 'c' {
			v = reflect.ValueOf(rune(x))
		}
	case 'd':
		f, err := d.float(64)
		if err != nil {
			return out, err
		}
		v = reflect.ValueOf(f)
	case 's':
		d.pos--
		s, err := d.value(reflect.TypeOf(""), depth)
		if err != nil {
			return out, err
		}
		v = s
	case 'l', 't', 'm':
		n, err := d.count()
		if err != nil {
			return out, err
		}
		per := 1
		if tag == 'm' {
			per = 2
		}
		items := make([]reflect.Value, 0, n*per)
		for i := 0; i < n*per; i++ {
			item, err := d.value(rrtfAnyType, depth+1)
			if err != nil {
				return out, err
			}
			items = append(items, item)
		}
		v = rrtfCollect(tag, items)
	default:
		return out, fmt.Errorf("no Go value for tag %q", tag)
	}
	if v.IsValid() {
		out.Set(v)
	}
	return out, nil
}

// rrtfCommon: the one Go type of the values held by `items` (every `step`-th from `from`), or interface{}
// when they differ, there are none, or it holds an interface{} itself (JSON-like nested data stays generic).
func rrtfCommon(items []reflect.Value, from, step int) reflect.Type {
	var common reflect.Type
	for i := from; i < len(items); i += step {
		e := items[i].Elem()
		if !e.IsValid() || (common != nil && e.Type() != common) {
			return rrtfAnyType
		}
		common = e.Type()
	}
	if common == nil || rrtfHoldsInterface(common) {
		return rrtfAnyType
	}
	return common
}

func rrtfHoldsInterface(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Slice, reflect.Array:
		return rrtfHoldsInterface(t.Elem())
	case reflect.Map:
		return rrtfHoldsInterface(t.Key()) || rrtfHoldsInterface(t.Elem())
	}
	return false
}

func rrtfCollect(tag byte, items []reflect.Value) reflect.Value {
	at := func(i int, t reflect.Type) reflect.Value {
		if t == rrtfAnyType {
			return items[i]
		}
		return items[i].Elem()
	}
	if tag == 'm' {
		kt, vt := rrtfCommon(items, 0, 2), rrtfCommon(items, 1, 2)
		m := reflect.MakeMapWithSize(reflect.MapOf(kt, vt), len(items)/2)
		for i := 0; i < len(items); i += 2 {
			m.SetMapIndex(at(i, kt), at(i+1, vt)) // panics on an unhashable key: `top` makes it an error
		}
		return m
	}
	et := rrtfCommon(items, 0, 1)
	var s reflect.Value
	if tag == 't' {
		s = reflect.New(reflect.ArrayOf(len(items), et)).Elem()
	} else {
		s = reflect.MakeSlice(reflect.SliceOf(et), len(items), len(items))
	}
	for i := range items {
		s.Index(i).Set(at(i, et))
	}
	return s
}
