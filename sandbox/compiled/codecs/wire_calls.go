// Calls over the wire (wire.go): the candidate's program answers them, the test's stub makes them.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"
)

// -------------------------------------------------------------------- the candidate's side: calls in

func rrtfPanicText(r interface{}) (text string) {
	defer func() {
		if recover() != nil {
			text = "panic (a value that cannot be printed)"
		}
	}()
	text = fmt.Sprint(r)
	if len(text) > 2000 {
		text = text[:2000]
	}
	return text
}

// rrtfServe answers the calls on fd until the test's program closes its end (EOF: exit 0).
func rrtfServe(fd uintptr, funcs map[string]interface{}) {
	conn := os.NewFile(fd, "calls")
	r := bufio.NewReaderSize(conn, 1<<16)
	for {
		payload, err := rrtfReadFrame(r, rrtfCallLimit)
		if err == io.EOF {
			os.Exit(0)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "rrtf: bad call frame:", err)
			os.Exit(2)
		}
		if rrtfWriteFrame(conn, rrtfAnswer(payload, funcs)) != nil {
			os.Exit(0)
		}
	}
}

// rrtfAnswer: "R" + the result, or "E" + the message of whatever the call panicked with.
func rrtfAnswer(payload []byte, funcs map[string]interface{}) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			e := &rrtfEnc{buf: []byte{'E'}}
			e.str(rrtfPanicText(r))
			reply = e.buf
		}
	}()
	d := &rrtfDec{data: payload}
	name, err := d.top(reflect.TypeOf(""), 0)
	fn, known := funcs[name.String()]
	if err != nil || !known || d.pos >= len(d.data) || d.data[d.pos] != 'l' {
		panic(fmt.Sprintf("rrtf: bad call (%v)", err))
	}
	d.pos++
	fv := reflect.ValueOf(fn)
	ft := fv.Type()
	n, err := d.count()
	if err != nil || n != ft.NumIn() {
		panic(fmt.Sprintf("rrtf: bad call: %d arguments (%v)", n, err))
	}
	args := make([]reflect.Value, n)
	for i := range args {
		if args[i], err = d.top(ft.In(i), 1); err != nil {
			panic("rrtf: bad argument: " + err.Error())
		}
	}
	if d.pos != len(d.data) {
		panic("rrtf: bad call: trailing bytes")
	}
	var out []reflect.Value
	if ft.IsVariadic() {
		out = fv.CallSlice(args)
	} else {
		out = fv.Call(args)
	}
	e := &rrtfEnc{buf: []byte{'R'}, strict: true}
	switch len(out) {
	case 0:
		e.buf = append(e.buf, 'n')
	case 1:
		err = e.value(out[0], 0)
	default: // multiple results: a tuple
		e.head('t', len(out))
		for _, o := range out {
			if err = e.value(o, 1); err != nil {
				break
			}
		}
	}
	if err != nil {
		panic("the result cannot cross to the test: " + err.Error())
	}
	return e.buf
}

// ---------------------------------------------------------------------------- the test's side: calls out

// rrtfCallFailed fails the case that made the call (the candidate raised, or its reply was malformed).
type rrtfCallFailed string

// rrtfEnded: the candidate's program has ended (crashed, exited, was killed). The test stops at once, as a
// crash of the one program did: no report for this case nor END, so the runner's reason for the
// candidate's end (exit status 2, memory_limit, ...) is what every remaining case says, as before.
// The socket closes before a process of many threads can be reaped (one thread closes the files while
// another still unmaps a large heap): the runner looks at the candidate when this program exits, and
// without the pause it found a running program 2 times in 3 after an out-of-memory crash (measured).
func rrtfEnded(why string) {
	fmt.Fprintln(os.Stderr, "rrtf: the candidate's program has ended"+why)
	time.Sleep(200 * time.Millisecond)
	os.Exit(0)
}

var (
	rrtfConn   *os.File
	rrtfReader *bufio.Reader
	rrtfBroken string // after a reply that could not be read to its end, the stream is out of step
)

// rrtfCall: what the stub with the entry point's signature does. `args` and `results` are the stub's
// own variables (reflect.ValueOf(&x).Elem()), so an interface{} parameter keeps its static type.
func rrtfCall(name string, args []reflect.Value, results []reflect.Value) {
	if rrtfBroken != "" {
		panic(rrtfCallFailed(rrtfBroken))
	}
	if rrtfConn == nil {
		rrtfConn = os.NewFile(rrtfTestCallFD, "calls")
		rrtfReader = bufio.NewReaderSize(rrtfConn, 1<<16)
	}
	e := &rrtfEnc{}
	e.str(name)
	e.head('l', len(args))
	for _, a := range args {
		if err := e.value(a, 1); err != nil {
			panic(rrtfCallFailed("the test's arguments cannot cross: " + err.Error()))
		}
	}
	if err := rrtfWriteFrame(rrtfConn, e.buf); err != nil {
		rrtfEnded(" (" + err.Error() + ")")
	}
	payload, err := rrtfReadFrame(rrtfReader, rrtfReplyLimit)
	if err == io.EOF {
		rrtfEnded("")
	}
	if err != nil {
		rrtfBroken = "no reply can be read after a malformed one: " + err.Error()
		panic(rrtfCallFailed("malformed reply from the candidate: " + err.Error()))
	}
	if msg, err := rrtfReply(payload, results); err != nil {
		panic(rrtfCallFailed("malformed reply from the candidate: " + err.Error()))
	} else if msg != nil {
		panic(rrtfCallFailed("candidate raised: " + *msg))
	}
}

// rrtfReply decodes a reply into `results` (set only once all of it decoded), or returns the message of "E".
func rrtfReply(payload []byte, results []reflect.Value) (*string, error) {
	if len(payload) == 0 || (payload[0] != 'R' && payload[0] != 'E') {
		return nil, errors.New("neither R nor E")
	}
	d := &rrtfDec{data: payload, pos: 1}
	if payload[0] == 'E' {
		msg, err := d.top(reflect.TypeOf(""), 0)
		if err == nil && d.pos != len(payload) {
			err = errors.New("trailing bytes")
		}
		text := msg.String()
		return &text, err
	}
	values := make([]reflect.Value, len(results))
	var err error
	switch len(results) {
	case 0:
		if d.pos >= len(payload) || payload[d.pos] != 'n' {
			return nil, errors.New("expected no result")
		}
		d.pos++
	case 1:
		values[0], err = d.top(results[0].Type(), 0)
	default:
		if d.pos >= len(payload) || payload[d.pos] != 't' {
			return nil, errors.New("expected a tuple of results")
		}
		d.pos++
		n, err := d.count()
		if err != nil || n != len(results) {
			return nil, fmt.Errorf("expected %d results", len(results))
		}
		for i := range values {
			if values[i], err = d.top(results[i].Type(), 1); err != nil {
				return nil, err
			}
		}
	}
	if err == nil && d.pos != len(payload) {
		err = errors.New("trailing bytes")
	}
	if err != nil {
		return nil, err
	}
	for i, v := range values {
		results[i].Set(v)
	}
	return nil, nil
}
