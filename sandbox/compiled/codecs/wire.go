// The plain-data wire (sandbox/compiled/wire.py) in Go: compiled into both programs of a separated
// Go run (sandbox/compiled/go_pair.py) -- the candidate's (its package, a dispatcher main) and the
// test's (the rewritten test, the prompt's helpers, a stub with the entry point's signature).
//
// The decoder is typed by reflect.Type: it reads exactly the shape the signature declares, so a
// static type bounds the nesting; every count is bounded by the bytes left in the frame before
// anything is allocated; numbers are at most rrtfNumberChars long and must fit the declared width;
// interface{} values are decoded by their tag (nil, bool, int, float64, string, rune, and lists and
// maps of those) at most rrtfDynamicDepth deep. The limits (rrtfReplyLimit, ...) are generated from
// wire.py in a file of their own. Nothing here trusts the bytes it reads: every error is a value,
// and a reflect panic is turned into one too. Three files: this one (encoding, frames), wire_decode.go
// (the typed decoder), wire_calls.go (the candidate's dispatcher loop, the test's stub call).
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
)

var rrtfAnyType = reflect.TypeOf((*interface{})(nil)).Elem()

// ---------------------------------------------------------------------------------------- encoding

type rrtfEnc struct {
	buf []byte
	// The candidate's results: a value inside an interface{} must arrive as the same Go type (an
	// int64 would arrive as an int, which testify's Equal would have told apart in one process).
	strict  bool
	dynamic bool // inside an interface{} value already checked as a whole
}

func rrtfFloatText(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, bits) // the shortest text that reads back to the same float
}

func (e *rrtfEnc) head(tag byte, n int) {
	e.buf = append(e.buf, tag)
	e.buf = strconv.AppendInt(e.buf, int64(n), 10)
	e.buf = append(e.buf, ':')
}

func (e *rrtfEnc) str(s string) {
	e.head('s', len(s))
	e.buf = append(e.buf, s...)
}

func (e *rrtfEnc) value(v reflect.Value, depth int) error {
	if depth > rrtfDynamicDepth {
		return errors.New("value nested too deeply")
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			e.buf = append(e.buf, 'T')
		} else {
			e.buf = append(e.buf, 'F')
		}
	case reflect.Int32: // rune and int32 are one type: a code point travels as a char
		if r := v.Int(); r >= 0 && r <= 0x10FFFF {
			e.buf = append(strconv.AppendInt(append(e.buf, 'c'), r, 10), ';')
		} else {
			e.buf = append(strconv.AppendInt(append(e.buf, 'i'), r, 10), ';')
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int64:
		e.buf = append(strconv.AppendInt(append(e.buf, 'i'), v.Int(), 10), ';')
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = append(strconv.AppendUint(append(e.buf, 'i'), v.Uint(), 10), ';')
	case reflect.Float32:
		e.buf = append(append(append(e.buf, 'd'), rrtfFloatText(v.Float(), 32)...), ';')
	case reflect.Float64:
		e.buf = append(append(append(e.buf, 'd'), rrtfFloatText(v.Float(), 64)...), ';')
	case reflect.String:
		e.str(v.String())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() { // testify tells a nil slice from an empty one
			e.buf = append(e.buf, 'n')
			return nil
		}
		e.head('l', v.Len())
		for i := 0; i < v.Len(); i++ {
			if err := e.value(v.Index(i), depth+1); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.IsNil() {
			e.buf = append(e.buf, 'n')
			return nil
		}
		e.head('m', v.Len())
		it := v.MapRange()
		for it.Next() {
			if err := e.value(it.Key(), depth+1); err != nil {
				return err
			}
			if err := e.value(it.Value(), depth+1); err != nil {
				return err
			}
		}
	case reflect.Interface:
		if v.IsNil() {
			e.buf = append(e.buf, 'n')
			return nil
		}
		if !e.strict || e.dynamic {
			return e.value(v.Elem(), depth)
		}
		start := len(e.buf)
		e.dynamic = true
		err := e.value(v.Elem(), depth)
		e.dynamic = false
		if err != nil {
			return err
		}
		d := &rrtfDec{data: e.buf[start:]}
		rebuilt, err := d.top(rrtfAnyType, depth)
		if err != nil {
			return err
		}
		if !rrtfSameTypes(v.Elem(), rebuilt.Elem()) {
			return fmt.Errorf("a %s in an interface{} would reach the test as a %s", v.Elem().Type(), rebuilt.Elem().Type())
		}
	default:
		return fmt.Errorf("a value of type %s has no plain-data form", v.Type())
	}
	return nil
}

// rrtfSameTypes: whether `b` (decoded from the encoding of `a`) has a's Go types all the way down.
func rrtfSameTypes(a, b reflect.Value) bool {
	if !a.IsValid() || !b.IsValid() {
		return a.IsValid() == b.IsValid()
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Interface:
		return rrtfSameTypes(a.Elem(), b.Elem())
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() || (a.Kind() == reflect.Slice && a.IsNil() != b.IsNil()) {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !rrtfSameTypes(a.Index(i), b.Index(i)) {
				return false
			}
		}
	case reflect.Map:
		if a.Len() != b.Len() || a.IsNil() != b.IsNil() {
			return false
		}
		it := a.MapRange()
		for it.Next() {
			if !rrtfSameTypes(it.Value(), b.MapIndex(it.Key())) { // a key of another type is not found
				return false
			}
		}
	}
	return true
}

// ------------------------------------------------------------------------------------------ frames

// rrtfReadFrame: one frame's payload, io.EOF at a clean end; the length is checked before reading on.
func rrtfReadFrame(r *bufio.Reader, limit int) ([]byte, error) {
	n, digits := 0, 0
	for {
		c, err := r.ReadByte()
		if err == io.EOF && digits == 0 {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("frame header: %v", err)
		}
		if c == '\n' && digits > 0 {
			break
		}
		if c < '0' || c > '9' || digits == 10 {
			return nil, errors.New("malformed frame header")
		}
		n, digits = n*10+int(c-'0'), digits+1
	}
	if n > limit {
		return nil, fmt.Errorf("frame of %d bytes is over the limit (%d)", n, limit)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, fmt.Errorf("frame cut short: %v", err)
	}
	return payload, nil
}

func rrtfWriteFrame(w *os.File, payload []byte) error {
	_, err := w.Write(append(strconv.AppendInt(nil, int64(len(payload)), 10), append([]byte{'\n'}, payload...)...))
	return err
}
