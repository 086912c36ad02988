"""The one-process JavaScript harness (node): trusted code that runs one HumanEvalPack JS test against a
candidate held in its own V8 context of the same process. Since issue 17 a JavaScript run normally puts the
candidate in a process of its own (sandbox/compiled/js_pair.py); this harness remains the fallback for a
problem the separated build cannot describe (`Build.one_process` says why; the verdict's isolation then reads
"<level>+one-process"). Its reporting half (REPORTER) and MD5 are shared with the separated test program.

The candidate's code runs in its **own V8 context** (`vm.createContext` on a null-prototype object:
its own `Object`, `Array`, `JSON`, ... and no `process` or any object of the harness's realm; its
`require`, defined inside it, offers only MD5: see MODULES), so it cannot patch what the test uses
(`console.assert`, `JSON.stringify`, `Array.prototype`) nor reach the report channel. The test runs in the
harness's realm and calls the candidate only
through wrappers: each call is source text evaluated in the candidate's context under a time limit
(`vm` timeout: an endless loop fails that case, not the run), with arguments written as literals (no
object of ours crosses) and the result serialised *inside* the candidate's context to a tagged JSON
string that the harness parses with its own, untouched `JSON.parse` -- so the test only ever holds
plain data it built itself. A candidate can at most lie about its own return value, which is what it
returns anyway. What one process cannot keep out (docs/sandbox.md, residual limit 1): helpers the prompt
defines run in the candidate's context, where the candidate may have patched their builtins.

Reports go to fd 3, a socket only the runner holds the other end of, each line tagged with
SipHash-2-4 under the run's key (read from that socket before any candidate code runs, kept in this
module's closure: no global, nothing the candidate's context can name).
"""
import json

# MD5 of a string's UTF-8 bytes, as hex: the npm package js-md5's default export. JavaScript/162's canonical
# solution uses js-md5, which the reference evaluation had installed (sandbox/compiled/js_pair.py installs it as a
# module for the candidate's own program; the one-process harness defines it in the candidate's context).
MD5 = r"""function (text) {
  var k = [], s = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21], i, j;
  for (i = 0; i < 64; i++) k[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0;
  var b = unescape(encodeURIComponent(String(text))), n = b.length, w = [];
  var total = (((n + 8) >> 6) + 1) * 16;
  for (i = 0; i < total; i++) w[i] = 0;
  for (i = 0; i < n; i++) w[i >> 2] |= b.charCodeAt(i) << ((i % 4) * 8);
  w[n >> 2] |= 0x80 << ((n % 4) * 8);
  w[total - 2] = (n * 8) | 0;
  w[total - 1] = Math.floor(n / 536870912) | 0;
  var h = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476];
  for (i = 0; i < total; i += 16) {
    var a = h[0], bb = h[1], c = h[2], d = h[3];
    for (j = 0; j < 64; j++) {
      var r = j >> 4, f, g;
      if (r === 0) { f = (bb & c) | (~bb & d); g = j; }
      else if (r === 1) { f = (d & bb) | (~d & c); g = (5 * j + 1) % 16; }
      else if (r === 2) { f = bb ^ c ^ d; g = (3 * j + 5) % 16; }
      else { f = c ^ (bb | ~d); g = (7 * j) % 16; }
      var x = (a + f + k[j] + w[i + g]) | 0, sh = s[(r << 2) | (j & 3)];
      a = d; d = c; c = bb;
      bb = (bb + ((x << sh) | (x >>> (32 - sh)))) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + bb) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
  }
  var out = '';
  for (i = 0; i < 4; i++) for (j = 0; j < 4; j++) out += ((h[i] >>> (j * 8)) & 255).toString(16).padStart(2, '0');
  return out;
}"""

# What `require` gives a candidate in the one-process harness, defined inside its own context (nothing of the
# harness's realm): MD5 as js-md5 and as node's crypto.createHash('md5').
MODULES = "var __rrtf_md5 = " + MD5 + r""";
var require = function (name) {
  if (name === 'js-md5') return __rrtf_md5;
  if (name === 'crypto') return {createHash: function (alg) {
    if (String(alg).toLowerCase() !== 'md5') throw new Error('only md5 is available');
    var data = '';
    return {update: function (x) { data += String(x); return this; },
            digest: function (enc) { if (enc !== 'hex') throw new Error('only hex digests'); return __rrtf_md5(data); }};
  }};
  throw new Error("Cannot find module '" + name + "'");
};
"""

# The reporting half of a JavaScript test program, shared by both harnesses: the key (read from the report socket,
# fd 3, before any other code runs), SipHash-2-4 and `emit`, which tags each report line (sandbox/worker/runner.py).
REPORTER = r"""const readKey = () => {
  const buf = Buffer.alloc(33);
  let n = 0;
  while (n < 33) {
    let got = 0;
    try { got = fs.readSync(3, buf, n, 33 - n, null); } catch (e) { if (e.code === 'EAGAIN') continue; break; }
    if (got <= 0) break;
    n += got;
    if (buf.indexOf(10) >= 0) break;
  }
  const hex = buf.toString('latin1').split('\n')[0];
  const key = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) key[i] = parseInt(hex.substr(2 * i, 2), 16) || 0;
  return key;
};
const KEY = readKey();
const M = (1n << 64n) - 1n;
const rotl = (x, b) => ((x << BigInt(b)) | (x >> BigInt(64 - b))) & M;
const sip = (msg) => {  // SipHash-2-4 (sandbox/worker/siphash.py)
  const k0 = KEY.readBigUInt64LE(0), k1 = KEY.readBigUInt64LE(8);
  const v = [k0 ^ 0x736f6d6570736575n, k1 ^ 0x646f72616e646f6dn, k0 ^ 0x6c7967656e657261n, k1 ^ 0x7465646279746573n];
  const rounds = (n) => {
    for (let r = 0; r < n; r++) {
      v[0] = (v[0] + v[1]) & M; v[1] = rotl(v[1], 13) ^ v[0]; v[0] = rotl(v[0], 32);
      v[2] = (v[2] + v[3]) & M; v[3] = rotl(v[3], 16) ^ v[2];
      v[0] = (v[0] + v[3]) & M; v[3] = rotl(v[3], 21) ^ v[0];
      v[2] = (v[2] + v[1]) & M; v[1] = rotl(v[1], 17) ^ v[2]; v[2] = rotl(v[2], 32);
    }
  };
  const m = Buffer.from(msg, 'utf8');
  const end = m.length - (m.length % 8);
  for (let i = 0; i < end; i += 8) {
    const w = m.readBigUInt64LE(i);
    v[3] ^= w; rounds(2); v[0] ^= w;
  }
  let b = BigInt(m.length & 0xff) << 56n;
  for (let j = 0; j < m.length % 8; j++) b |= BigInt(m[end + j]) << BigInt(8 * j);
  v[3] ^= b; rounds(2); v[0] ^= b; v[2] ^= 0xffn; rounds(4);
  return (v[0] ^ v[1] ^ v[2] ^ v[3]).toString(16).padStart(16, '0');
};
const emit = (message) => {
  const line = Buffer.from(sip(message) + ' ' + message + '\n', 'utf8');
  let off = 0;
  while (off < line.length) {
    try { off += fs.writeSync(3, line, off); } catch (e) { if (e.code !== 'EAGAIN') return; }
  }
};
const clean = (s) => String(s).replace(/[\r\n]/g, ' ').slice(0, 300);
"""

HARNESS = r"""'use strict';
const fs = require('fs');
const vm = require('vm');
const path = require('path');
%(reporter)sconst here = path.dirname(process.argv[1]);
const spec = JSON.parse(fs.readFileSync(path.join(here, 'spec.json'), 'utf8'));
const timeout = Math.max(1, Math.round(spec.timeout_ms));

// The candidate's realm: its own builtins, a console that prints nothing, no way to ours.
const ctx = vm.createContext(Object.create(null), {microtaskMode: 'afterEvaluate'});
const MODULES = %(modules)s;
vm.runInContext(`var console = {log() {}, error() {}, warn() {}, info() {}, debug() {}, assert() {}};
${MODULES}
var __rrtf_ser = function (root) {
  const enc = (x, depth) => {
    if (depth > 200) throw new RangeError('value nested too deeply');
    if (x === null) return ['z'];
    const t = typeof x;
    if (t === 'undefined') return ['u'];
    if (t === 'boolean') return ['b', x];
    if (t === 'string') return ['s', x];
    if (t === 'bigint') return ['i', x.toString()];
    if (t === 'number') return ['n', Number.isFinite(x) ? (Object.is(x, -0) ? '-0' : x) : String(x)];
    if (Array.isArray(x)) return ['a', Array.from(x, (e) => enc(e, depth + 1))];
    if (t === 'object') {
      const o = {};
      for (const k of Object.keys(x)) o[k] = enc(x[k], depth + 1);
      return ['o', o];
    }
    throw new TypeError('a ' + t + ' is not plain data');
  };
  return JSON.stringify(enc(root, 0));
};
var __rrtf_err = function (e) {
  try { return JSON.stringify(['E', String(e && e.name) + ': ' + String(e && e.message)]); } catch (x) { return '["E","error"]'; }
};`, ctx);
let loadError = '';
try {
  vm.runInContext(fs.readFileSync(path.join(here, 'cand.js'), 'utf8'), ctx, {timeout, filename: 'candidate.js'});
} catch (e) {
  loadError = (e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') ? 'timeout (while loading the program)'
    : /allocation failed|out of memory/i.test(String(e && e.message)) ? 'memory_limit (while loading the program)'
    : 'program failed to load';
}
const decode = (v) => {
  switch (v[0]) {
    case 'z': return null;
    case 'u': return undefined;
    case 'b': return v[1] === true;
    case 's': return String(v[1]);
    case 'i': return BigInt(v[1]);
    case 'n': return v[1] === '-0' ? -0 : Number(v[1]);
    case 'a': return v[1].map(decode);
    case 'o': { const o = {}; for (const k of Object.keys(v[1])) o[k] = decode(v[1][k]); return o; }
    default: throw new Error('bad value');
  }
};
const literal = (x, depth = 0) => {  // a value of the test's, as source text for the candidate's realm
  if (depth > 200) throw new Error('argument nested too deeply');
  if (x === undefined) return 'undefined';
  if (x === null || typeof x === 'boolean') return String(x);
  if (typeof x === 'number') return Object.is(x, -0) ? '-0' : String(x);
  if (typeof x === 'bigint') return x.toString() + 'n';
  if (typeof x === 'string') return JSON.stringify(x);
  if (Array.isArray(x)) return '[' + x.map((e) => literal(e, depth + 1)).join(', ') + ']';
  if (typeof x === 'object') return '({' + Object.keys(x).map((k) => JSON.stringify(k) + ': ' + literal(x[k], depth + 1)).join(', ') + '})';
  throw new Error('a ' + typeof x + ' cannot be passed to the program');
};
class CandidateError extends Error {}
const run = (source) => {
  if (loadError) throw new CandidateError(loadError);
  let text;
  try {
    text = vm.runInContext(`(() => { try { return __rrtf_ser(${source}); } catch (e) { return __rrtf_err(e); } })()`, ctx, {timeout});
  } catch (e) {
    throw new CandidateError(e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT' ? 'timeout' : 'program failed');
  }
  if (typeof text !== 'string' || text.length > (16 << 20)) throw new CandidateError('returned a value that is not plain data');
  let v;
  try { v = JSON.parse(text); } catch (e) { throw new CandidateError('returned a value that is not plain data'); }
  if (Array.isArray(v) && v[0] === 'E') throw new CandidateError(clean(v[1]));
  try { return decode(v); } catch (e) { throw new CandidateError('returned a value that is not plain data'); }
};
// The names the test uses that the candidate's program defines: functions become wrappers, data a copy.
for (const name of spec.names) {
  let kind = 'undefined';
  try { kind = vm.runInContext(`typeof ${name}`, ctx, {timeout}); } catch (e) { continue; }
  if (kind === 'function') {
    globalThis[name] = (...args) => run(`${name}(${args.map((a) => literal(a)).join(', ')})`);
  } else if (kind !== 'undefined') {
    try { globalThis[name] = run(name); } catch (e) { }
  }
}
%(cases)s"""

# Each case run under a guard that turns what it raised into the report's error text; the test file run last.
# Shared with the process-separated harness (js_pair.py).
CASES = r"""class AssertFail extends Error {}
globalThis.console = {log() {}, error() {}, warn() {}, info() {}, debug() {},
  assert(cond) { if (!cond) throw new AssertFail('false'); }};
globalThis.__rrtf_case = (i, body) => {
  let error = '';
  try { body(); } catch (e) {
    error = e instanceof AssertFail ? 'AssertionError: false' : e instanceof CandidateError ? clean(e.message)
      : clean((e && e.name) + ': ' + (e && e.message));
    // Memory refused under the run's RLIMIT_DATA (compiled/run.py) reaches JavaScript as a RangeError.
    if (/allocation failed|out of memory/i.test(error)) error = 'memory_limit: ' + error;
  }
  emit(error ? `${i} F ${error}` : `${i} P`);
};
try {
  vm.runInThisContext(fs.readFileSync(path.join(here, 'test.js'), 'utf8'), {filename: 'test.js'});
  emit('END');
} catch (e) {
  emit('SETUP ' + clean(e instanceof CandidateError ? e.message : (e && e.name) + ': ' + (e && e.message)));
}
"""
HARNESS = HARNESS.replace("%(cases)s", CASES).replace("%(reporter)s", REPORTER).replace("%(modules)s", json.dumps(MODULES))
