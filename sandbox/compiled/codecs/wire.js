// The plain-data wire (sandbox/compiled/wire.py) in JavaScript, for both programs of a separated run:
// the test's (it decodes replies it cannot trust) and the candidate's dispatcher (sandbox/compiled/js_pair.py).
// JavaScript has no declared types, so the codec is driven by the tags: numbers travel as `d` (their shortest
// round-tripping text, -0, nan, inf), bigints as `i`, undefined as `u`, arrays as `l`, every other object as
// `m` with its own enumerable string keys. Decoding is bounded before anything is allocated: the frame's
// length against a limit, each count against the bytes left, numbers to NUMBER_CHARS, nesting to
// DYNAMIC_DEPTH. Decoded values are built here, from this realm's own constructors: nothing the other side
// made (a getter, a valueOf, a prototype) crosses.
//
// This file is one function expression: each program embeds it as `const WIRE = (<this text>)(fs, limits);`,
// so it defines no global name in either program.
(function (fs, limits) {
  'use strict';
  const NUMBER_CHARS = limits.numberChars, DEPTH = limits.depth;
  class WireError extends Error {}
  WireError.prototype.name = 'WireError';

  // A socket left non-blocking answers EAGAIN: wait a millisecond instead of spinning.
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const retry = (e) => {
    if (!e || (e.code !== 'EAGAIN' && e.code !== 'EINTR')) return false;
    Atomics.wait(sleeper, 0, 0, 1);
    return true;
  };

  // ---------------------------------------------------------------- encoding: value -> text parts
  const encodeTo = (out, x, depth) => {
    if (depth > DEPTH) throw new RangeError('value nested too deeply for the wire');
    if (x === null) { out.push('n'); return; }
    switch (typeof x) {
      case 'undefined': out.push('u'); return;
      case 'boolean': out.push(x ? 'T' : 'F'); return;
      case 'number':  // String(x) is the shortest text that reads back as x; -0 would print as 0
        out.push('d', x !== x ? 'nan' : x === Infinity ? 'inf' : x === -Infinity ? '-inf' : Object.is(x, -0) ? '-0' : String(x), ';');
        return;
      case 'bigint': {
        const text = x.toString();
        if (text.length > NUMBER_CHARS) throw new RangeError('integer too long for the wire');
        out.push('i', text, ';');
        return;
      }
      case 'string': out.push('s', String(Buffer.byteLength(x, 'utf8')), ':', x); return;
      case 'object': {
        if (Array.isArray(x)) {
          const n = x.length;
          out.push('l', String(n), ':');
          for (let i = 0; i < n; i++) encodeTo(out, x[i], depth + 1);
          return;
        }
        const keys = Object.keys(x);
        out.push('m', String(keys.length), ':');
        for (const k of keys) { encodeTo(out, k, depth + 1); encodeTo(out, x[k], depth + 1); }
        return;
      }
      default: throw new TypeError('a ' + typeof x + ' is not plain data');
    }
  };
  // Every string part is preceded by its ASCII header, so no two lone surrogates can pair up in the join.
  const encode = (...values) => {
    const out = [];
    for (const v of values) encodeTo(out, v, 0);
    return Buffer.from(out.join(''), 'utf8');
  };
  const frame = (payload) => Buffer.concat([Buffer.from(payload.length + '\n', 'latin1'), payload]);
  const call = (name, args) => encode(String(name), Array.from(args));
  const reply = (value) => Buffer.concat([Buffer.from('R', 'latin1'), encode(value)]);
  const error = (message) => Buffer.concat([Buffer.from('E', 'latin1'), encode(String(message))]);

  // ---------------------------------------------------------------- decoding: bytes -> value
  const DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
  const SPECIAL = {nan: NaN, inf: Infinity, '-inf': -Infinity};
  const value = (st, depth) => {
    if (depth > DEPTH) throw new WireError('nested too deeply');
    const buf = st.buf;
    if (st.pos >= buf.length) throw new WireError('truncated');
    const tag = String.fromCharCode(buf[st.pos++]);
    switch (tag) {
      case 'n': return null;
      case 'u': return undefined;
      case 'T': return true;
      case 'F': return false;
      case 'i': case 'd': case 'c': {
        const end = buf.subarray(st.pos, st.pos + NUMBER_CHARS + 1).indexOf(0x3b);
        if (end < 0) throw new WireError('number too long or unterminated');
        const text = buf.toString('latin1', st.pos, st.pos + end);
        st.pos += end + 1;
        if (tag === 'i') {
          if (!/^-?\d+$/.test(text)) throw new WireError('bad integer');
          return BigInt(text);
        }
        if (tag === 'c') {
          if (!/^\d+$/.test(text) || Number(text) > 0x10ffff) throw new WireError('bad char');
          return String.fromCodePoint(Number(text));
        }
        if (Object.prototype.hasOwnProperty.call(SPECIAL, text)) return SPECIAL[text];
        if (!DECIMAL.test(text)) throw new WireError('bad number');
        return Number(text);
      }
      case 'o': return value(st, depth + 1);  // JavaScript has no optional: a present one is its value
      case 's': case 'l': case 'm': case 't': {
        const colon = buf.subarray(st.pos, st.pos + 11).indexOf(0x3a);
        const digits = colon > 0 ? buf.toString('latin1', st.pos, st.pos + colon) : '';
        if (!/^\d+$/.test(digits)) throw new WireError('bad length');
        const count = Number(digits);
        st.pos += colon + 1;
        if (count > buf.length - st.pos) throw new WireError('length beyond the frame');  // each item takes a byte
        if (tag === 's') {
          const text = buf.toString('utf8', st.pos, st.pos + count);
          st.pos += count;
          return text;
        }
        if (tag !== 'm') {
          const items = [];
          for (let i = 0; i < count; i++) items.push(value(st, depth + 1));
          return items;
        }
        const obj = {};
        for (let i = 0; i < count; i++) {
          const k = value(st, depth + 1);
          if (typeof k !== 'string') throw new WireError('an object key that is not a string');
          // defineProperty: a key "__proto__" is an own property, never the object's prototype
          Object.defineProperty(obj, k, {value: value(st, depth + 1), writable: true, enumerable: true, configurable: true});
        }
        return obj;
      }
      default: throw new WireError('unknown tag ' + JSON.stringify(tag));
    }
  };
  const decodeAll = (buf, start, count) => {
    const st = {buf, pos: start}, out = [];
    for (let i = 0; i < count; i++) out.push(value(st, 0));
    if (st.pos !== buf.length) throw new WireError('trailing bytes');
    return out;
  };
  const decode = (buf) => decodeAll(buf, 0, 1)[0];
  const decodeCall = (buf) => {
    const [name, args] = decodeAll(buf, 0, 2);
    if (typeof name !== 'string' || !Array.isArray(args)) throw new WireError('a call is a name and a list');
    return [name, args];
  };
  // {value} for R, {error} for E (the candidate's message)
  const decodeReply = (buf) => {
    const kind = buf.length ? String.fromCharCode(buf[0]) : '';
    if (kind === 'R') return {value: decodeAll(buf, 1, 1)[0]};
    if (kind !== 'E') throw new WireError('a reply starts with R or E');
    const message = decodeAll(buf, 1, 1)[0];
    if (typeof message !== 'string') throw new WireError('an error message is a string');
    return {error: message};
  };

  // ---------------------------------------------------------------- frames on a socket, synchronously
  const writeAll = (fd, buf) => {
    let off = 0;
    while (off < buf.length) {
      try { off += fs.writeSync(fd, buf, off, buf.length - off); } catch (e) { if (!retry(e)) throw e; }
    }
  };
  class Reader {
    constructor(fd, limit) {
      this.fd = fd;
      this.limit = limit;
      this.buf = Buffer.alloc(0);
      this.chunk = Buffer.allocUnsafe(1 << 16);
    }
    read(into, off) {  // bytes read, 0 at the end of the stream
      for (;;) {
        try { return fs.readSync(this.fd, into, off, into.length - off, null); } catch (e) {
          if (e && e.code === 'ECONNRESET') return 0;  // the other program died with data unread: its end
          if (!retry(e)) throw e;
        }
      }
    }
    // One frame's payload; null at a clean end of the stream. Throws WireError on a bad or oversized header:
    // the stream is then out of step, and its reader must not be used again.
    next() {
      let nl;
      while ((nl = this.buf.subarray(0, 12).indexOf(10)) < 0) {
        if (this.buf.length > 11) throw new WireError('bad frame header');
        const n = this.read(this.chunk, 0);
        if (n === 0) {
          if (this.buf.length) throw new WireError('the stream ended inside a frame');
          return null;
        }
        this.buf = Buffer.concat([this.buf, this.chunk.subarray(0, n)]);
      }
      const head = this.buf.toString('latin1', 0, nl);
      if (!/^\d{1,10}$/.test(head)) throw new WireError('bad frame header');
      const size = Number(head);
      if (size > this.limit) throw new WireError(`a frame of ${size} bytes, over the limit of ${this.limit}`);
      const rest = this.buf.subarray(nl + 1);
      if (rest.length >= size) {
        this.buf = Buffer.from(rest.subarray(size));
        return Buffer.from(rest.subarray(0, size));
      }
      const payload = Buffer.allocUnsafe(size);
      let have = rest.copy(payload, 0);
      this.buf = Buffer.alloc(0);
      while (have < size) {
        const n = this.read(payload, have);
        if (n === 0) throw new WireError('the stream ended inside a frame');
        have += n;
      }
      return payload;
    }
  }
  return {WireError, encode, frame, call, reply, error, decode, decodeCall, decodeReply, writeAll, Reader,
    REPLY_LIMIT: limits.reply, CALL_LIMIT: limits.call};
})
