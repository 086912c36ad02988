// The C++ codec of the plain-data wire (sandbox/compiled/wire.py holds the grammar and the reference codec).
//
// Added to both programs of a process-separated C++ run (sandbox/compiled/cpp_pair.py writes them):
//   - the candidate's program: `serve` reads call frames on fd 3, a generated dispatcher decodes the arguments by
//     the entry point's parameter types, calls it and writes `R`+result or `E`+message;
//   - the test's program: a stub with the entry point's signature calls `call<R>`, which sends the arguments on
//     fd 4 and decodes the reply as exactly the declared return type.
// The types are overloads and templates, so the generator only copies the signature's type text. The test side
// reads hostile bytes: a frame's length is checked against REPLY_LIMIT before its payload is read, every count
// against the bytes left, every number is at most NUMBER_CHARS characters, an integer must fit its declared
// type, and nesting is bounded by the type (no dynamic values in C++). Any malformation is a `WireError`, which
// fails the calling case only.
#ifndef RRTF_WIRE_HPP
#define RRTF_WIRE_HPP
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rrtf_wire {
// The three system calls the frames need, declared here (as glibc declares them, on LP64 Linux) rather than through
// <unistd.h> and <sys/socket.h>: those would put dozens of POSIX names (send, bind, optind, encrypt, ...) into the
// global namespace of the candidate's code and of the prompt's, where they could clash with the programs' own names.
namespace sys {
extern "C" long read(int fd, void* buf, unsigned long n);
extern "C" long write(int fd, const void* buf, unsigned long n);
extern "C" long send(int fd, const void* buf, unsigned long n, int flags);
extern "C" int usleep(unsigned usec);
constexpr int NO_SIGNAL = 0x4000;  // MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE
}  // namespace sys
constexpr int CANDIDATE_FD = 3, TEST_CALL_FD = 4;   // wire.py's CANDIDATE_FD, TEST_CALL_FD
constexpr size_t REPLY_LIMIT = size_t(8) << 20;     // wire.py's REPLY_LIMIT
constexpr size_t CALL_LIMIT = size_t(64) << 20;     // wire.py's CALL_LIMIT
constexpr size_t NUMBER_CHARS = 40;                 // wire.py's NUMBER_CHARS

struct WireError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ------------------------------------------------------------------------------------------- encoding
// Declared first: a template's unqualified call only finds overloads declared before it (no ADL into rrtf_wire).
inline void put(std::string& o, bool v);
inline void put(std::string& o, char v);
inline void put(std::string& o, float v);
inline void put(std::string& o, double v);
inline void put(std::string& o, const std::string& v);
template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>, int> = 0>
void put(std::string& o, T v);
template <class T, class A> void put(std::string& o, const std::vector<T, A>& v);
template <class T, class A> void put(std::string& o, const std::list<T, A>& v);
template <class T, class A> void put(std::string& o, const std::deque<T, A>& v);
template <class T, class C, class A> void put(std::string& o, const std::set<T, C, A>& v);
template <class K, class V, class C, class A> void put(std::string& o, const std::map<K, V, C, A>& v);
template <class K, class V, class H, class E, class A> void put(std::string& o, const std::unordered_map<K, V, H, E, A>& v);
template <class A, class B> void put(std::string& o, const std::pair<A, B>& v);
template <class... T> void put(std::string& o, const std::tuple<T...>& v);
template <class T> void put(std::string& o, const std::optional<T>& v);

inline void put(std::string& o, bool v) { o += v ? 'T' : 'F'; }
inline void put(std::string& o, char v) { o += 'c' + std::to_string(unsigned(static_cast<unsigned char>(v))) + ';'; }
inline void put_float(std::string& o, double v, int digits) {  // 9 digits round-trip a float, 17 a double
    if (std::isnan(v)) { o += "dnan;"; return; }
    if (std::isinf(v)) { o += v > 0 ? "dinf;" : "d-inf;"; return; }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    o += 'd';
    o += buf;
    o += ';';
}
inline void put(std::string& o, float v) { put_float(o, v, 9); }
inline void put(std::string& o, double v) { put_float(o, v, 17); }
inline void put(std::string& o, const std::string& v) { o += 's' + std::to_string(v.size()) + ':'; o += v; }
template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>, int>>
void put(std::string& o, T v) { o += 'i' + std::to_string(v) + ';'; }
template <class C> void put_items(std::string& o, char tag, const C& c) {
    o += tag + std::to_string(c.size()) + ':';
    for (const auto& x : c) put(o, x);
}
template <class T, class A> void put(std::string& o, const std::vector<T, A>& v) { put_items(o, 'l', v); }
template <class T, class A> void put(std::string& o, const std::list<T, A>& v) { put_items(o, 'l', v); }
template <class T, class A> void put(std::string& o, const std::deque<T, A>& v) { put_items(o, 'l', v); }
template <class T, class C, class A> void put(std::string& o, const std::set<T, C, A>& v) { put_items(o, 'l', v); }
template <class M> void put_map(std::string& o, const M& m) {
    o += 'm' + std::to_string(m.size()) + ':';
    for (const auto& kv : m) { put(o, kv.first); put(o, kv.second); }
}
template <class K, class V, class C, class A> void put(std::string& o, const std::map<K, V, C, A>& v) { put_map(o, v); }
template <class K, class V, class H, class E, class A>
void put(std::string& o, const std::unordered_map<K, V, H, E, A>& v) { put_map(o, v); }
template <class A, class B> void put(std::string& o, const std::pair<A, B>& v) { o += "t2:"; put(o, v.first); put(o, v.second); }
template <class... T> void put(std::string& o, const std::tuple<T...>& v) {
    o += 't' + std::to_string(sizeof...(T)) + ':';
    std::apply([&o](const auto&... x) { (put(o, x), ...); }, v);
}
template <class T> void put(std::string& o, const std::optional<T>& v) {
    if (!v) { o += 'n'; return; }
    o += 'o';
    put(o, *v);
}

// ------------------------------------------------------------------------------------------- decoding
struct Reader {
    const char* p;
    const char* end;
    char tag() {
        if (p >= end) throw WireError("truncated value");
        return *p++;
    }
    void expect(char t) {
        char got = tag();
        if (got != t) throw WireError(std::string("expected tag '") + t + "', got byte " + std::to_string((unsigned char)got));
    }
    std::string number() {  // the text before ';', at most NUMBER_CHARS characters
        size_t room = std::min(size_t(end - p), NUMBER_CHARS + 1);
        const char* semi = static_cast<const char*>(std::memchr(p, ';', room));
        if (!semi) throw WireError("number too long or unterminated");
        std::string text(p, semi);
        p = semi + 1;
        return text;
    }
    size_t count() {  // "<digits>:" -- every item takes at least one byte, so no count beyond the bytes left
        size_t n = 0, digits = 0;
        while (p < end && *p >= '0' && *p <= '9' && digits < 10) n = n * 10 + size_t(*p++ - '0'), digits++;
        if (!digits || p >= end || *p != ':') throw WireError("bad length");
        p++;
        if (n > size_t(end - p)) throw WireError("length beyond the frame");
        return n;
    }
    void finish() const {
        if (p != end) throw WireError("trailing bytes");
    }
};

inline void get(Reader& r, bool& v);
inline void get(Reader& r, char& v);
inline void get(Reader& r, float& v);
inline void get(Reader& r, double& v);
inline void get(Reader& r, std::string& v);
template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>, int> = 0>
void get(Reader& r, T& v);
template <class T, class A> void get(Reader& r, std::vector<T, A>& v);
template <class T, class A> void get(Reader& r, std::list<T, A>& v);
template <class T, class A> void get(Reader& r, std::deque<T, A>& v);
template <class T, class C, class A> void get(Reader& r, std::set<T, C, A>& v);
template <class K, class V, class C, class A> void get(Reader& r, std::map<K, V, C, A>& v);
template <class K, class V, class H, class E, class A> void get(Reader& r, std::unordered_map<K, V, H, E, A>& v);
template <class A, class B> void get(Reader& r, std::pair<A, B>& v);
template <class... T> void get(Reader& r, std::tuple<T...>& v);
template <class T> void get(Reader& r, std::optional<T>& v);

inline void get(Reader& r, bool& v) {
    char t = r.tag();
    if (t != 'T' && t != 'F') throw WireError("expected a bool");
    v = t == 'T';
}
// An integer's digits, checked against [lo, hi] as they accumulate (no overflow whatever the text).
inline void integer(const std::string& text, long long lo, unsigned long long hi, bool& negative, unsigned long long& magnitude) {
    negative = !text.empty() && text[0] == '-';
    size_t i = negative ? 1 : 0;
    if (i == text.size()) throw WireError("bad integer");
    unsigned long long limit = negative ? (lo < 0 ? 0ULL - static_cast<unsigned long long>(lo) : 0ULL) : hi;
    magnitude = 0;
    for (; i < text.size(); i++) {
        if (text[i] < '0' || text[i] > '9') throw WireError("bad integer");
        unsigned d = unsigned(text[i] - '0');
        if (d > limit || magnitude > (limit - d) / 10) throw WireError("integer out of range: " + text);
        magnitude = magnitude * 10 + d;
    }
}
inline void get(Reader& r, char& v) {
    r.expect('c');
    bool negative;
    unsigned long long m;
    integer(r.number(), 0, 255, negative, m);
    v = static_cast<char>(static_cast<unsigned char>(m));
}
template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>, int>>
void get(Reader& r, T& v) {
    r.expect('i');
    bool negative;
    unsigned long long m;
    integer(r.number(), static_cast<long long>(std::numeric_limits<T>::min()),
            static_cast<unsigned long long>(std::numeric_limits<T>::max()), negative, m);
    v = negative ? static_cast<T>(0ULL - m) : static_cast<T>(m);  // in range: checked above
}
template <class F> F floating(Reader& r, F (*parse)(const char*, char**)) {
    r.expect('d');
    std::string text = r.number();
    if (text == "nan") return std::numeric_limits<F>::quiet_NaN();
    if (text == "inf" || text == "-inf") return text[0] == '-' ? -std::numeric_limits<F>::infinity() : std::numeric_limits<F>::infinity();
    if (text.empty() || text.find_first_not_of("0123456789.eE+-") != std::string::npos) throw WireError("bad float " + text);
    char* stop = nullptr;
    F v = parse(text.c_str(), &stop);
    if (stop != text.c_str() + text.size()) throw WireError("bad float " + text);
    return v;
}
inline float parse_float(const char* s, char** stop) { return std::strtof(s, stop); }
inline double parse_double(const char* s, char** stop) { return std::strtod(s, stop); }
inline void get(Reader& r, float& v) { v = floating<float>(r, parse_float); }
inline void get(Reader& r, double& v) { v = floating<double>(r, parse_double); }
inline void get(Reader& r, std::string& v) {
    r.expect('s');
    size_t n = r.count();
    v.assign(r.p, n);
    r.p += n;
}
template <class C> void get_items(Reader& r, C& c) {  // no reserve: memory grows with the bytes actually sent
    r.expect('l');
    size_t n = r.count();
    c.clear();
    for (size_t i = 0; i < n; i++) {
        typename C::value_type x{};
        get(r, x);
        c.insert(c.end(), std::move(x));
    }
}
template <class T, class A> void get(Reader& r, std::vector<T, A>& v) { get_items(r, v); }
template <class T, class A> void get(Reader& r, std::list<T, A>& v) { get_items(r, v); }
template <class T, class A> void get(Reader& r, std::deque<T, A>& v) { get_items(r, v); }
template <class T, class C, class A> void get(Reader& r, std::set<T, C, A>& v) { get_items(r, v); }
template <class M> void get_map(Reader& r, M& m) {
    r.expect('m');
    size_t n = r.count();
    m.clear();
    for (size_t i = 0; i < n; i++) {
        typename M::key_type k{};
        typename M::mapped_type x{};
        get(r, k);
        get(r, x);
        m[std::move(k)] = std::move(x);  // a repeated key: the last one wins, as in wire.py's dict
    }
}
template <class K, class V, class C, class A> void get(Reader& r, std::map<K, V, C, A>& v) { get_map(r, v); }
template <class K, class V, class H, class E, class A> void get(Reader& r, std::unordered_map<K, V, H, E, A>& v) { get_map(r, v); }
inline void arity(Reader& r, size_t n) {
    r.expect('t');
    if (r.count() != n) throw WireError("wrong tuple size");
}
template <class A, class B> void get(Reader& r, std::pair<A, B>& v) {
    arity(r, 2);
    get(r, v.first);
    get(r, v.second);
}
template <class... T> void get(Reader& r, std::tuple<T...>& v) {
    arity(r, sizeof...(T));
    std::apply([&r](auto&... x) { (get(r, x), ...); }, v);
}
template <class T> void get(Reader& r, std::optional<T>& v) {
    char t = r.tag();
    if (t == 'n') { v.reset(); return; }
    if (t != 'o') throw WireError("expected an optional");
    T x{};
    get(r, x);
    v = std::move(x);
}

// ------------------------------------------------------------------------------------------- frames
inline bool write_all(int fd, const std::string& data) {
    for (size_t off = 0; off < data.size();) {
        long w = sys::send(fd, data.data() + off, data.size() - off, sys::NO_SIGNAL);
        if (w < 0 && errno == ENOTSOCK) w = sys::write(fd, data.data() + off, data.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        off += size_t(w);
    }
    return true;
}
inline long read_some(int fd, char* buf, size_t n) {
    for (;;) {
        long got = sys::read(fd, buf, n);
        if (got < 0 && errno == EINTR) continue;
        return got;
    }
}
// false: the peer closed before a frame began; throws on a malformed, oversized or cut frame.
inline bool read_frame(int fd, size_t limit, std::string& payload) {
    size_t n = 0, digits = 0;
    for (;;) {
        char c;
        long got = read_some(fd, &c, 1);
        if (got <= 0) {
            if (digits == 0) return false;
            throw WireError("frame cut short");
        }
        if (c == '\n' && digits > 0) break;
        if (c < '0' || c > '9' || digits == 10) throw WireError("malformed frame header");
        n = n * 10 + size_t(c - '0');
        digits++;
    }
    if (n > limit) throw WireError("frame of " + std::to_string(n) + " bytes is over the limit");
    payload.resize(n);
    for (size_t off = 0; off < n;) {
        long got = read_some(fd, &payload[off], n - off);
        if (got <= 0) throw WireError("frame cut short");
        off += size_t(got);
    }
    return true;
}
inline std::string frame(const std::string& payload) { return std::to_string(payload.size()) + "\n" + payload; }

// ------------------------------------------------------------------------------------------- the test's side
template <class T> std::remove_cv_t<T> result(Reader& r) {
    std::remove_cv_t<T> v{};
    get(r, v);
    return v;
}
// The candidate's program has ended (crashed, exited, ran out of time or memory): the test's program ends too, without
// reporting this case or any later one, so the verdict says why the candidate ended (the runner saw its exit), as it did
// when both ran in one process -- never "passed", since the test's END is not reported.
[[noreturn]] inline void candidate_gone(const char* name) {
    std::fprintf(stderr, "the candidate's program ended before replying to a call of %s\n", name);
    std::fflush(nullptr);
    sys::usleep(50000);  // the candidate closed its end while exiting: let it finish, so the runner sees its status
    std::_Exit(0);
}
template <class R, class... A> R call(const char* name, const A&... args) {
    std::string payload;
    put(payload, std::string(name));
    payload += 'l' + std::to_string(sizeof...(A)) + ':';
    (put(payload, args), ...);
    if (!write_all(TEST_CALL_FD, frame(payload))) candidate_gone(name);
    std::string reply;
    bool got = false;
    try {
        got = read_frame(TEST_CALL_FD, REPLY_LIMIT, reply);
    } catch (const WireError& e) {
        throw WireError(std::string("bad reply from the candidate: ") + e.what());
    }
    if (!got) candidate_gone(name);
    Reader r{reply.data(), reply.data() + reply.size()};
    std::string message;
    try {
        char t = r.tag();
        if (t == 'E') {
            get(r, message);
            r.finish();
        } else if (t != 'R') {
            throw WireError("not a reply");
        } else if constexpr (std::is_void_v<R>) {
            r.expect('n');
            r.finish();
            return;
        } else {
            auto v = result<R>(r);
            r.finish();
            return v;
        }
    } catch (const WireError& e) {
        throw WireError(std::string("malformed reply from the candidate: ") + e.what());
    }
    throw WireError("candidate raised: " + message);
}

// ------------------------------------------------------------------------------------------- the candidate's side
template <class T> std::string reply(const T& v) {
    std::string o = "R";
    put(o, v);
    return o;
}
inline std::string error_reply(const char* what) {
    std::string o = "E";
    put(o, std::string(what ? what : "exception"));
    return o;
}
// Serves calls until the test's program closes its end; `handle(Reader&)` decodes the arguments (positioned after
// the list's count, checked to be `arity`), calls the entry point and returns the reply payload.
template <class F> int serve(const char* name, size_t arity, F handle) {
    std::string call;
    for (;;) {
        try {
            if (!read_frame(CANDIDATE_FD, CALL_LIMIT, call)) return 0;
        } catch (const WireError&) {
            return 2;
        }
        std::string out;
        try {
            Reader r{call.data(), call.data() + call.size()};
            std::string called;
            get(r, called);
            r.expect('l');
            if (called != name || r.count() != arity) throw WireError("unknown call " + called);
            out = handle(r);
        } catch (const std::exception& e) {
            out = error_reply(e.what());
        } catch (...) {
            out = error_reply("exception");
        }
        std::fflush(nullptr);  // what the call printed, before the reply: the run may end (and kill this) right after
        if (!write_all(CANDIDATE_FD, frame(out))) return 0;
    }
}
}  // namespace rrtf_wire
#endif
