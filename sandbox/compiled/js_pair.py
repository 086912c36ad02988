"""JavaScript in two programs (issue 17): the candidate's code runs in a node process of its own, the test in
another, and the two meet only through calls that cross a socket as plain data (sandbox/compiled/wire.py,
codec: sandbox/compiled/codecs/wire.js).

The candidate's program is its code as before (the prompt and the completion, one CommonJS module with
node's real `require`; js-md5 installed beside it) followed, in the same module scope, by a dispatcher:
it reads call frames on fd 3, looks the called name up among the module's own top-level names (so
`const f = ...` is reachable), calls it, and writes `R` + the result or `E` + the error's message. It runs
as its own uid, holds neither the key nor the test, and cannot read the test's files (installed for the
test's program only). Whatever it patches (`Array.prototype.reduce`, `String.prototype.slice`, `fs`) is
its own process's.

The test's program holds the key and the report socket (sandbox/compiled/js_harness.py REPORTER), the
prompt's own helpers (`poly`, `encodeCyclic`, ...: trusted code, run with the test's untouched builtins) and
the rewritten test; every name the test calls that neither defines nor node provides -- the entry point
first -- is a stub that sends the call on fd 4 and waits for the reply. A reply is decoded by this realm's
own code into values it builds itself (no getter, valueOf or toJSON of the candidate's crosses); an `E`, a
malformed or oversized reply makes the stub throw, and the case guard reports that case failed; when the
candidate's program has ended (crashed, ran out of memory, exited), the test's program ends too, without
reporting further, and the verdict names the candidate's exit as it named a one-process crash.

Time: the stub waits for the reply without a limit of its own (node has no synchronous read with a
timeout). A call that never returns holds the test until the program timeout (`program_timeout_s`), when
the runner ends both programs: the cases reported before it count, the rest fail with "timeout", and the
verdict's reason is "timeout". The old per-call `vm` timeout let later cases run on; a candidate that loops
forever on one input is rarely right on the others.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from sandbox.compiled.clike import code_matches, skip_js_literal
from sandbox.compiled.js_harness import CASES, MD5, REPORTER
from sandbox.compiled.wire import CALL_LIMIT, CANDIDATE_FD, DYNAMIC_DEPTH, NUMBER_CHARS, REPLY_LIMIT, TEST_CALL_FD

WIRE_JS = (Path(__file__).parent / "codecs" / "wire.js").read_text()
LIMITS = json.dumps({"numberChars": NUMBER_CHARS, "depth": DYNAMIC_DEPTH, "reply": REPLY_LIMIT, "call": CALL_LIMIT})
# The candidate's js-md5 (`require('js-md5')`), installed as bin/node_modules/js-md5 for the candidate's program only.
MD5_MODULE = "'use strict';\nconst md5 = " + MD5 + ";\nmodule.exports = md5;\nmodule.exports.hex = md5;\n"

IDENT = re.compile(r"[A-Za-z_$][\w$]*")
CALLED = re.compile(r"(?<![\w$.])([A-Za-z_$][\w$]*)\s*\(")
DECLARATION = re.compile(r"\b(?:const|let|var|function)\s+([A-Za-z_$][\w$]*)")
# A prompt's last line: the entry point's header, whose body the completion writes.
HEADER = re.compile(r"(?:(?:const|let|var)\s+[A-Za-z_$][\w$]*\s*=\s*(?:async\s*)?(?:function\s*)?\([^()]*\)\s*(?:=>\s*)?"
                    r"|(?:async\s+)?function\s+[A-Za-z_$][\w$]*\s*\([^()]*\)\s*)\{\s*$")
# Words that are not names a test can call (or that the dispatcher could not name): keywords, and what every
# scope has of its own (`arguments`, `eval`, the module's `require`).
RESERVED = frozenset("""break case catch class const continue debugger default delete do else enum export extends false finally
for function if import in instanceof let new null return super switch this throw true try typeof var void while with yield
await async static of arguments eval require module exports undefined NaN Infinity""".split())


class NotSeparable(ValueError):
    """A problem the separated build cannot describe: it keeps the one-process harness, with this reason."""


def called_names(test: str) -> list[str]:
    """Names the test calls as `name(` (outside strings, comments and member accesses)."""
    out, i = set(), 0
    while i < len(test):
        if test[i] in "\"'`" or test.startswith(("//", "/*"), i):
            i = skip_js_literal(test, i)
            continue
        m = CALLED.match(test, i) if i == 0 or not (test[i - 1].isalnum() or test[i - 1] in "_$.") else None
        if m:
            out.add(m.group(1))
        i = m.end(1) if m else i + 1
    return sorted(n for n in out if n not in RESERVED)


def split_prompt(code_prefix: str, entry: str) -> tuple[str, list[str]]:
    """(the prompt's code before the entry point's declaration -- its helpers, which run on the test's side --,
    the names the entry point may go by). HumanEvalPack's JS prompts end with the entry point's header
    (`const f = (x) => {`); JavaScript/114's is named minSubArraySum while its entry_point says minSubarraySum,
    so the header's own name is the entry point too."""
    if not IDENT.fullmatch(entry) or entry in RESERVED:
        raise NotSeparable(f"the entry point {entry!r} is not a name the dispatcher can call")
    if not code_prefix.strip():
        return "", [entry]  # the completion is the whole program
    decls = code_matches(code_prefix, DECLARATION)
    own = [m for m in decls if m.group(1) == entry]
    last = decls[-1] if decls else None
    if last is not None and HEADER.match(code_prefix, last.start()) and last.group(1) not in RESERVED:
        return code_prefix[:last.start()], sorted({entry, last.group(1)})
    if own:
        return code_prefix[:own[-1].start()], [entry]
    raise NotSeparable("the prompt's code does not declare the entry point")


def dispatcher(names: list[str]) -> str:
    """The candidate's side: appended to its program, in the same module scope. Only `lookup`, an argument
    built outside the function, names the candidate's top-level bindings: the dispatcher's own names
    (fs, WIRE, ...) cannot shadow one of them."""
    cases = "".join(f"case {json.dumps(n)}: return typeof {n} === 'undefined' ? undefined : {n};\n" for n in names
                    if IDENT.fullmatch(n) and n not in RESERVED)
    return ("\n;(function (lookup) {  // rrtf's dispatcher (sandbox/compiled/js_pair.py): serves the test's calls\n"
            "  'use strict';\n"
            "  const fs = require('fs');\n"
            f"  const WIRE = ({WIRE_JS})(fs, {LIMITS});\n"
            + DISPATCH_LOOP.replace("%(fd)s", str(CANDIDATE_FD)) +
            "})((name) => { switch (name) {\n" + cases + "default: return undefined; } });\n")


DISPATCH_LOOP = r"""
  const describe = (e) => {
    try { return e instanceof Error ? String(e.name) + ': ' + String(e.message) : 'thrown: ' + String(e); } catch (x) { return 'an error'; }
  };
  const calls = new WIRE.Reader(%(fd)s, WIRE.CALL_LIMIT);
  for (;;) {
    let payload;
    try { payload = calls.next(); } catch (e) { process.stderr.write('rrtf dispatcher: ' + describe(e) + '\n'); process.exit(70); }
    if (payload === null) process.exit(0);  // the test has ended
    let reply;
    try {
      const [name, args] = WIRE.decodeCall(payload);
      const f = lookup(name);
      if (typeof f !== 'function') throw new ReferenceError(name + ' is not a function of the program');
      reply = WIRE.reply(f(...args));
    } catch (e) {
      reply = WIRE.error(describe(e));
    }
    WIRE.writeAll(%(fd)s, WIRE.frame(reply));
  }
"""

# The test's program: reporter, codec, stubs, then the prompt's helpers and the rewritten test (test.js).
TEST_HARNESS = r"""'use strict';
const fs = require('fs');
const vm = require('vm');
const path = require('path');
%(reporter)s
const WIRE = (%(wire)s)(fs, %(limits)s);
const here = path.dirname(process.argv[1]);
const spec = JSON.parse(fs.readFileSync(path.join(here, 'spec.json'), 'utf8'));
class CandidateError extends Error {}
const CALLS = %(fd)s;
const replies = new WIRE.Reader(CALLS, WIRE.REPLY_LIMIT);
let over = '';  // once the calls channel is out of step, every later call fails with this
const lost = (why) => { over = why; throw new CandidateError(why); };
// The candidate's program has ended (crashed, out of memory, exited): the run ends here, as a crash of one program
// did, with no further report. The runner then names the candidate's exit (compiled/run.py: "exit status 3",
// "crashed (SIGSEGV)", "memory_limit ..."), so give it a moment to be reaped before this program exits.
const ended = (name) => {
  try { process.stderr.write(`rrtf: the candidate's program ended before replying to ${name}()\n`); } catch (e) { }
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  process.exit(0);
};
const call = (name, args) => {
  if (over) throw new CandidateError(over);
  let data;
  try { data = WIRE.frame(WIRE.call(name, args)); }
  catch (e) { throw new CandidateError('the arguments cannot cross to the candidate: ' + e.message); }
  if (data.length > WIRE.CALL_LIMIT) throw new CandidateError('the arguments are too large to cross to the candidate');
  try { WIRE.writeAll(CALLS, data); } catch (e) { ended(name); }
  let payload;
  try { payload = replies.next(); } catch (e) { lost('malformed reply from the candidate: ' + e.message); }
  if (payload === null) ended(name);
  let reply;
  try { reply = WIRE.decodeReply(payload); } catch (e) { throw new CandidateError('malformed reply from the candidate: ' + e.message); }
  if ('error' in reply) throw new CandidateError('candidate raised: ' + reply.error);
  return reply.value;
};
// The entry point always reaches the candidate; another called name only if the test's side has none: node's
// builtins stay node's, and the prompt's helpers (test.js's own declarations) shadow these stubs.
for (const name of spec.stubs) {
  if (spec.entries.includes(name) || !(name in globalThis)) globalThis[name] = (...args) => call(name, args);
}
%(cases)s"""
TEST_HARNESS = (TEST_HARNESS.replace("%(cases)s", CASES)
                .replace("%(reporter)s", REPORTER).replace("%(wire)s", WIRE_JS).replace("%(limits)s", LIMITS)
                .replace("%(fd)s", str(TEST_CALL_FD))).encode()


def make_test_files(code_prefix: str, test: str, rewritten: str, entry: str) -> tuple[dict[str, bytes], list[str]]:
    """The test's files (`rewritten`: the test with its cases wrapped) and the names the candidate's dispatcher
    must answer: the entry point and whatever else the test calls. Raises NotSeparable."""
    helpers, entries = split_prompt(code_prefix, entry)
    own = {m.group(1) for m in code_matches(test, DECLARATION)}  # the test's own functions (testX, its helpers)
    stubs = sorted(set(entries) | (set(called_names(test)) - own))
    spec = {"entries": entries, "stubs": stubs}
    files = {"harness.js": TEST_HARNESS, "spec.json": json.dumps(spec).encode(),
             "test.js": (helpers + "\n;\n" + rewritten).encode()}
    return files, stubs
