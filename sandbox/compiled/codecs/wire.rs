// The plain-data wire of sandbox/compiled/wire.py, in Rust: compiled once per machine by
// sandbox/languages/rust.py into the crate `rrtf_wire`, which both programs of a separated run link -- the
// candidate's (its code, a generated dispatcher) and the test's (the test, the prompt's helpers, a stub per
// entry point).
//
// Decoding is typed: `Dec` is implemented per type, so a value is read exactly in the shape the
// signature declares and nesting is bounded by the type. Every count is checked against the bytes
// left in the frame before anything is allocated, numbers are at most NUMBER_CHARS characters, and an
// integer that does not fit its declared width fails the call. Frame lengths are checked against
// the limit before the payload is read.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::io::{Read, Write};
use std::os::unix::io::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

pub const CANDIDATE_FD: i32 = 3;
pub const TEST_CALL_FD: i32 = 4;
pub const REPLY_LIMIT: usize = 8 << 20;
pub const CALL_LIMIT: usize = 64 << 20;
const NUMBER_CHARS: usize = 40;

pub trait Enc { fn enc(&self, out: &mut Vec<u8>); }
pub trait Dec: Sized { fn dec(r: &mut Reader) -> Result<Self, String>; }

pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self { Reader { data, pos: 0 } }
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.data.get(self.pos).ok_or("truncated value")?;
        self.pos += 1;
        Ok(b)
    }
    fn tag(&mut self, want: u8, what: &str) -> Result<(), String> {
        match self.byte()? {
            b if b == want => Ok(()),
            b => Err(format!("expected {} (tag {:?}), found tag {:?}", what, want as char, b as char)),
        }
    }
    // The text of a number, up to its ';' (which must come within NUMBER_CHARS).
    fn number(&mut self) -> Result<&'a str, String> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().take(NUMBER_CHARS + 1).position(|&b| b == b';').ok_or("number too long or unterminated")?;
        let text = std::str::from_utf8(&rest[..end]).map_err(|_| "number is not ASCII")?;
        self.pos += end + 1;
        Ok(text)
    }
    // `<tag><count>:`, the count at most 10 digits and at most the bytes left (each item takes one or more).
    pub fn count(&mut self, tag: u8, what: &str) -> Result<usize, String> {
        self.tag(tag, what)?;
        let rest = &self.data[self.pos..];
        let colon = rest.iter().take(11).position(|&b| b == b':').ok_or("bad length")?;
        if colon == 0 || !rest[..colon].iter().all(u8::is_ascii_digit) {
            return Err("bad length".into());
        }
        let n: usize = std::str::from_utf8(&rest[..colon]).unwrap().parse().map_err(|_| "bad length")?;
        self.pos += colon + 1;
        if n > self.data.len() - self.pos {
            return Err("length beyond the frame".into());
        }
        Ok(n)
    }
    pub fn finish(&self) -> Result<(), String> {
        if self.pos == self.data.len() { Ok(()) } else { Err("trailing bytes after the value".into()) }
    }
}

fn put_count(out: &mut Vec<u8>, tag: u8, n: usize) {
    out.push(tag);
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b':');
}

macro_rules! ints { ($($t:ty)*) => {$(
    impl Enc for $t {
        fn enc(&self, out: &mut Vec<u8>) {
            out.push(b'i');
            out.extend_from_slice(self.to_string().as_bytes());
            out.push(b';');
        }
    }
    impl Dec for $t {
        fn dec(r: &mut Reader) -> Result<Self, String> {
            r.tag(b'i', "an integer")?;
            let text = r.number()?;
            let digits = text.strip_prefix('-').unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("bad integer {:?}", text));
            }
            text.parse::<$t>().map_err(|_| format!("integer {} does not fit {}", text, stringify!($t)))
        }
    }
)*} }
ints!(i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize);

// Floats: Debug is the shortest text that reads back to the same value (f32: as an f32), within 40 chars.
macro_rules! floats { ($($t:ident)*) => {$(
    impl Enc for $t {
        fn enc(&self, out: &mut Vec<u8>) {
            let text = if self.is_nan() { "nan".to_string() } else if self.is_infinite() {
                (if *self > 0.0 { "inf" } else { "-inf" }).to_string()
            } else { format!("{:?}", self) };
            out.push(b'd');
            out.extend_from_slice(text.as_bytes());
            out.push(b';');
        }
    }
    impl Dec for $t {
        fn dec(r: &mut Reader) -> Result<Self, String> {
            r.tag(b'd', "a float")?;
            match r.number()? {
                "nan" => Ok(std::$t::NAN),
                "inf" => Ok(std::$t::INFINITY),
                "-inf" => Ok(std::$t::NEG_INFINITY),
                text if text.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) => {
                    text.parse::<$t>().map_err(|_| format!("bad float {:?}", text))
                }
                text => Err(format!("bad float {:?}", text)),
            }
        }
    }
)*} }
floats!(f32 f64);

impl Enc for bool {
    fn enc(&self, out: &mut Vec<u8>) { out.push(if *self { b'T' } else { b'F' }); }
}
impl Dec for bool {
    fn dec(r: &mut Reader) -> Result<Self, String> {
        match r.byte()? {
            b'T' => Ok(true),
            b'F' => Ok(false),
            b => Err(format!("expected a bool, found tag {:?}", b as char)),
        }
    }
}

impl Enc for char {
    fn enc(&self, out: &mut Vec<u8>) { out.extend_from_slice(format!("c{};", *self as u32).as_bytes()); }
}
impl Dec for char {
    fn dec(r: &mut Reader) -> Result<Self, String> {
        r.tag(b'c', "a char")?;
        let text = r.number()?;
        let code: u32 = if text.bytes().all(|b| b.is_ascii_digit()) { text.parse().ok() } else { None }
            .ok_or_else(|| format!("bad char {:?}", text))?;
        char::from_u32(code).ok_or_else(|| format!("{} is not a char", code))
    }
}

impl Enc for str {
    fn enc(&self, out: &mut Vec<u8>) {
        put_count(out, b's', self.len());
        out.extend_from_slice(self.as_bytes());
    }
}
impl Enc for String {
    fn enc(&self, out: &mut Vec<u8>) { self.as_str().enc(out) }
}
impl Dec for String {
    fn dec(r: &mut Reader) -> Result<Self, String> {
        let n = r.count(b's', "a string")?;
        let bytes = &r.data[r.pos..r.pos + n];
        r.pos += n;
        String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
}
// Borrowed values nested in a declared type (`Vec<&str>`, a `&str` result) are decoded once and leaked:
// they live as long as the program, which holds only what its calls exchanged.
impl<'a> Dec for &'a str {
    fn dec(r: &mut Reader) -> Result<Self, String> { String::dec(r).map(|s| &*Box::leak(s.into_boxed_str())) }
}
impl<'a, T: Dec> Dec for &'a T {
    fn dec(r: &mut Reader) -> Result<Self, String> { T::dec(r).map(|v| &*Box::leak(Box::new(v))) }
}
impl<'a, T: Dec> Dec for &'a [T] {
    fn dec(r: &mut Reader) -> Result<Self, String> { Vec::<T>::dec(r).map(|v| &*Box::leak(v.into_boxed_slice())) }
}
impl<T: Enc + ?Sized> Enc for &T {
    fn enc(&self, out: &mut Vec<u8>) { (**self).enc(out) }
}
impl<T: Enc + ?Sized> Enc for &mut T {
    fn enc(&self, out: &mut Vec<u8>) { (**self).enc(out) }
}
impl<T: Enc + ?Sized> Enc for Box<T> {
    fn enc(&self, out: &mut Vec<u8>) { (**self).enc(out) }
}
impl<T: Dec> Dec for Box<T> {
    fn dec(r: &mut Reader) -> Result<Self, String> { T::dec(r).map(Box::new) }
}

fn enc_items<'x, T: Enc + 'x>(out: &mut Vec<u8>, n: usize, items: impl Iterator<Item = &'x T>) {
    put_count(out, b'l', n);
    for item in items {
        item.enc(out);
    }
}
fn dec_items<T: Dec>(r: &mut Reader) -> Result<Vec<T>, String> {
    let n = r.count(b'l', "a list")?;
    let mut items = Vec::with_capacity(n.min(4096));  // grows as items really arrive
    for _ in 0..n {
        items.push(T::dec(r)?);
    }
    Ok(items)
}

impl<T: Enc> Enc for [T] {
    fn enc(&self, out: &mut Vec<u8>) { enc_items(out, self.len(), self.iter()) }
}
impl<T: Enc, const N: usize> Enc for [T; N] {
    fn enc(&self, out: &mut Vec<u8>) { enc_items(out, N, self.iter()) }
}
impl<T: Dec, const N: usize> Dec for [T; N] {
    fn dec(r: &mut Reader) -> Result<Self, String> {
        dec_items::<T>(r)?.try_into().map_err(|v: Vec<T>| format!("expected {} items, found {}", N, v.len()))
    }
}
macro_rules! lists { ($($c:ident [$($b:tt)*])*) => {$(
    impl<T: Enc> Enc for $c<T> {
        fn enc(&self, out: &mut Vec<u8>) { enc_items(out, self.len(), self.iter()) }
    }
    impl<T: Dec $($b)*> Dec for $c<T> {
        fn dec(r: &mut Reader) -> Result<Self, String> { dec_items::<T>(r).map(|v| v.into_iter().collect()) }
    }
)*} }
lists!(Vec [] VecDeque [] HashSet [+ Eq + Hash] BTreeSet [+ Ord]);

macro_rules! maps { ($($c:ident [$($b:tt)*])*) => {$(
    impl<K: Enc, V: Enc> Enc for $c<K, V> {
        fn enc(&self, out: &mut Vec<u8>) {
            put_count(out, b'm', self.len());
            for (k, v) in self.iter() {
                k.enc(out);
                v.enc(out);
            }
        }
    }
    impl<K: Dec $($b)*, V: Dec> Dec for $c<K, V> {
        fn dec(r: &mut Reader) -> Result<Self, String> {
            let n = r.count(b'm', "a map")?;
            let mut map = $c::new();
            for _ in 0..n {
                let k = K::dec(r)?;
                map.insert(k, V::dec(r)?);
            }
            Ok(map)
        }
    }
)*} }
maps!(HashMap [+ Eq + Hash] BTreeMap [+ Ord]);

impl<T: Enc> Enc for Option<T> {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(b'n'),
            Some(v) => {
                out.push(b'o');
                v.enc(out)
            }
        }
    }
}
impl<T: Dec> Dec for Option<T> {
    fn dec(r: &mut Reader) -> Result<Self, String> {
        match r.byte()? {
            b'n' => Ok(None),
            b'o' => T::dec(r).map(Some),
            b => Err(format!("expected an option, found tag {:?}", b as char)),
        }
    }
}

impl Enc for () {
    fn enc(&self, out: &mut Vec<u8>) { out.push(b'n') }
}
impl Dec for () {
    fn dec(r: &mut Reader) -> Result<Self, String> { r.tag(b'n', "nothing") }
}

macro_rules! tuples { ($(($n:expr; $($t:ident $i:tt)+))*) => {$(
    impl<$($t: Enc),+> Enc for ($($t,)+) {
        fn enc(&self, out: &mut Vec<u8>) {
            put_count(out, b't', $n);
            $(self.$i.enc(out);)+
        }
    }
    impl<$($t: Dec),+> Dec for ($($t,)+) {
        fn dec(r: &mut Reader) -> Result<Self, String> {
            let n = r.count(b't', "a tuple")?;
            if n != $n {
                return Err(format!("expected a tuple of {}, found {}", $n, n));
            }
            Ok(($($t::dec(r)?,)+))
        }
    }
)*} }
tuples!((1; A 0) (2; A 0 B 1) (3; A 0 B 1 C 2) (4; A 0 B 1 C 2 D 3) (5; A 0 B 1 C 2 D 3 E 4)
        (6; A 0 B 1 C 2 D 3 E 4 F 5) (7; A 0 B 1 C 2 D 3 E 4 F 5 G 6) (8; A 0 B 1 C 2 D 3 E 4 F 5 G 6 H 7)
        (9; A 0 B 1 C 2 D 3 E 4 F 5 G 6 H 7 I 8) (10; A 0 B 1 C 2 D 3 E 4 F 5 G 6 H 7 I 8 J 9)
        (11; A 0 B 1 C 2 D 3 E 4 F 5 G 6 H 7 I 8 J 9 K 10) (12; A 0 B 1 C 2 D 3 E 4 F 5 G 6 H 7 I 8 J 9 K 10 L 11));

// ------------------------------------------------------------------------------------------ frames

fn fd_file(fd: i32) -> std::mem::ManuallyDrop<std::fs::File> {
    // The fd belongs to the program for its whole life: never closed by a drop.
    std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) })
}

enum Frame {
    Data(Vec<u8>),
    Eof,
    Bad(String),
}

fn read_frame(f: &mut std::fs::File, limit: usize) -> Frame {
    let mut digits = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match f.read(&mut b) {
            Ok(1) if b[0] == b'\n' && !digits.is_empty() => break,
            Ok(1) if b[0].is_ascii_digit() && digits.len() < 10 => digits.push(b[0]),
            Ok(1) => return Frame::Bad("malformed frame header".into()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            _ => return Frame::Eof,
        }
    }
    let n: usize = std::str::from_utf8(&digits).unwrap().parse().unwrap_or(usize::MAX);
    if n > limit {
        return Frame::Bad(format!("a frame of {} bytes, over the limit of {}", n, limit));
    }
    let mut data = vec![0u8; n];
    match f.read_exact(&mut data) {
        Ok(()) => Frame::Data(data),
        Err(_) => Frame::Eof,
    }
}

fn write_frame(f: &mut std::fs::File, payload: &[u8]) -> bool {
    let mut framed = format!("{}\n", payload.len()).into_bytes();
    framed.extend_from_slice(payload);
    f.write_all(&framed).is_ok()
}

// ------------------------------------------------------------------------------ the test's side

// A failed call, raised as a panic payload in the test's case (the case then reports the message as is).
pub struct CallFailed(pub String);

pub enum CallError {
    Gone(String),    // the candidate's program has ended: the test stops
    Failed(String),  // this call failed: its case fails, the test goes on
}

static BROKEN: AtomicBool = AtomicBool::new(false);  // a reply could not be read to its end: no frame boundary left

pub fn call<T: Dec>(name: &str, n: usize, args: &[u8]) -> Result<T, CallError> {
    if BROKEN.load(Ordering::SeqCst) {
        return Err(CallError::Failed("no reply: an earlier reply of the candidate was unreadable".into()));
    }
    let mut payload = Vec::with_capacity(args.len() + name.len() + 24);
    name.enc(&mut payload);
    put_count(&mut payload, b'l', n);
    payload.extend_from_slice(args);
    let mut f = fd_file(TEST_CALL_FD);
    if !write_frame(&mut f, &payload) {
        return Err(CallError::Gone("the candidate's program ended (its call socket is closed)".into()));
    }
    let data = match read_frame(&mut f, REPLY_LIMIT) {
        Frame::Data(data) => data,
        Frame::Eof => return Err(CallError::Gone("the candidate's program ended before it replied".into())),
        Frame::Bad(why) => {
            BROKEN.store(true, Ordering::SeqCst);
            return Err(CallError::Failed(format!("bad reply from the candidate: {}", why)));
        }
    };
    let mut r = Reader::new(&data);
    let bad = |why: String| CallError::Failed(format!("bad reply from the candidate: {}", why));
    match r.byte() {
        Ok(b'R') => {
            let value = T::dec(&mut r).map_err(bad)?;
            r.finish().map_err(bad)?;
            Ok(value)
        }
        Ok(b'E') => {
            let msg = String::dec(&mut r).map_err(bad)?;
            Err(CallError::Failed(format!("candidate raised: {}", msg)))
        }
        _ => Err(bad("neither R nor E".into())),
    }
}

// ------------------------------------------------------------------------- the candidate's side

pub type Dispatch = fn(&str, usize, &mut Reader) -> Result<Vec<u8>, String>;

pub fn error_reply(msg: &str) -> Vec<u8> {
    let mut out = vec![b'E'];
    msg.enc(&mut out);
    out
}

pub fn arity(got: usize, want: usize) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("{} arguments, expected {}", got, want)) }
}

// The call's result, or its panic as an `E` reply (the payload is forgotten: its drop may panic again).
pub fn reply<R: Enc, F: FnOnce() -> R>(f: F) -> Vec<u8> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(value) => {
            let mut out = vec![b'R'];
            value.enc(&mut out);
            out
        }
        Err(payload) => {
            let msg = if let Some(s) = payload.downcast_ref::<&str>() { s.to_string() }
                      else if let Some(s) = payload.downcast_ref::<String>() { s.clone() }
                      else { "panic".to_string() };
            std::mem::forget(payload);
            error_reply(&msg)
        }
    }
}

// The candidate program's loop: a call in, its reply out, until the test closes the socket.
pub fn serve(dispatch: Dispatch) {
    let mut f = fd_file(CANDIDATE_FD);
    loop {
        let data = match read_frame(&mut f, CALL_LIMIT) {
            Frame::Data(data) => data,
            _ => return,
        };
        let mut r = Reader::new(&data);
        let answer = String::dec(&mut r).and_then(|name| {
            let n = r.count(b'l', "an argument list")?;
            dispatch(&name, n, &mut r)
        });
        let mut out = answer.unwrap_or_else(|why| error_reply(&format!("bad call: {}", why)));
        if out.len() > REPLY_LIMIT {
            out = error_reply(&format!("the result takes {} bytes, over the wire's limit", out.len()));
        }
        if !write_frame(&mut f, &out) {
            return;
        }
    }
}
