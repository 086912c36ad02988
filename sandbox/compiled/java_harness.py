"""The Java side of the harness: the class `R` compiled with every rewritten HumanEvalPack test.

`R.open()` is the first statement of the test's `main`, before any candidate code runs: it reads the
run's report key from the socket the runner gives the program as its inherited channel (fd 0), and
keeps key and channel in an instance that only `main`'s local variable refers to -- no static field,
so neither the candidate's code nor reflection on `R` can reach them (only reading the process's
memory could). Every report line is tagged with SipHash-2-4 under that key; a line a candidate writes
to the same channel (`System.inheritedChannel()` is public) does not verify.

In a process-separated run (sandbox/compiled/java_pair.py) the candidate is another program: a failed call
(rrtf_w.Wire.Failure) is reported by its message alone, "candidate raised: ...", "malformed reply: ...".

`R.plain(x)` (one-process runs only) wraps every call of the candidate's methods in the test: what comes back is rebuilt from
standard-library types only (lists, sets, maps, Optional, arrays, strings, boxed numbers), so the
test's `.equals`, `.size()`, `.contains(...)` run JDK code -- a returned object whose `equals` always
says true, or a list subclass that lies about its size, becomes plain data or a failed case.
"""

REPORTER = r"""
final class R {
    private final java.nio.channels.ByteChannel out;
    private final long k0, k1;

    private R(java.nio.channels.ByteChannel out, long k0, long k1) { this.out = out; this.k0 = k0; this.k1 = k1; }

    static R open() {
        java.nio.channels.ByteChannel ch = null;
        long k0 = 0, k1 = 0;
        try {
            java.nio.channels.Channel c = System.inheritedChannel();
            if (c instanceof java.nio.channels.ByteChannel) ch = (java.nio.channels.ByteChannel) c;
            byte[] key = new byte[16];
            java.nio.ByteBuffer one = java.nio.ByteBuffer.allocate(1);
            for (int n = 0; ch != null && n < 33; n++) {
                one.clear();
                if (ch.read(one) <= 0 || one.get(0) == '\n') break;
                if (n < 32) key[n / 2] |= (byte) (Character.digit((char) one.get(0), 16) << (n % 2 == 0 ? 4 : 0));
            }
            for (int i = 7; i >= 0; i--) { k0 = (k0 << 8) | (key[i] & 0xffL); k1 = (k1 << 8) | (key[i + 8] & 0xffL); }
        } catch (Throwable t) { }
        System.setIn(new java.io.ByteArrayInputStream(new byte[0]));
        return new R(ch, k0, k1);
    }

    private long sip(byte[] m) {  // SipHash-2-4 (sandbox/worker/siphash.py)
        long[] v = {0x736f6d6570736575L ^ k0, 0x646f72616e646f6dL ^ k1, 0x6c7967656e657261L ^ k0, 0x7465646279746573L ^ k1};
        int n = m.length, end = n - n % 8;
        for (int i = 0; i < end; i += 8) {
            long w = 0;
            for (int j = 7; j >= 0; j--) w = (w << 8) | (m[i + j] & 0xffL);
            v[3] ^= w; rounds(v, 2); v[0] ^= w;
        }
        long b = ((long) (n & 0xff)) << 56;
        for (int j = n % 8 - 1; j >= 0; j--) b |= (m[end + j] & 0xffL) << (8 * j);
        v[3] ^= b; rounds(v, 2); v[0] ^= b; v[2] ^= 0xff; rounds(v, 4);
        return v[0] ^ v[1] ^ v[2] ^ v[3];
    }

    private static void rounds(long[] v, int n) {
        for (int r = 0; r < n; r++) {
            v[0] += v[1]; v[1] = Long.rotateLeft(v[1], 13); v[1] ^= v[0]; v[0] = Long.rotateLeft(v[0], 32);
            v[2] += v[3]; v[3] = Long.rotateLeft(v[3], 16); v[3] ^= v[2];
            v[0] += v[3]; v[3] = Long.rotateLeft(v[3], 21); v[3] ^= v[0];
            v[2] += v[1]; v[1] = Long.rotateLeft(v[1], 17); v[1] ^= v[2]; v[2] = Long.rotateLeft(v[2], 32);
        }
    }

    private void emit(String message) {  // one write per line: what was reported before an exit is kept
        if (out == null) return;
        byte[] m = message.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        String line = String.format("%016x", sip(m)) + " " + message + "\n";
        try {
            java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(line.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            while (buf.hasRemaining()) out.write(buf);
        } catch (Throwable t) { }
    }

    private static String describe(Throwable t) {
        if (t.getClass().getName().equals("rrtf_w.Wire$Failure")) {  // a call of the candidate's program: its own words
            String m = String.valueOf(t.getMessage()).replace('\n', ' ').replace('\r', ' ');
            return m.length() > 300 ? m.substring(0, 300) : m;
        }
        String s = (t instanceof AssertionError) ? "AssertionError" : t.getClass().getName();
        try { if (t.getMessage() != null) s += ": " + t.getMessage(); } catch (Throwable ignored) { }
        s = s.replace('\n', ' ').replace('\r', ' ');
        return s.length() > 300 ? s.substring(0, 300) : s;
    }

    void begin(int n) { emit("BEGIN " + n); }
    void check(int i, boolean ok) { emit(i + (ok ? " P" : " F AssertionError: false")); }
    void error(int i, Throwable t) { emit(i + " F " + describe(t)); }
    void setup(Throwable t) { emit("SETUP " + describe(t)); }
    void end() { emit("END"); }

    static boolean plain(boolean x) { return x; }
    static byte plain(byte x) { return x; }
    static short plain(short x) { return x; }
    static char plain(char x) { return x; }
    static int plain(int x) { return x; }
    static long plain(long x) { return x; }
    static float plain(float x) { return x; }
    static double plain(double x) { return x; }

    @SuppressWarnings("unchecked")
    static <T> T plain(T x) { return (T) copy(x, 0); }

    private static Object copy(Object x, int depth) {
        if (x == null) return null;
        if (depth > 1000) throw new IllegalStateException("returned a value nested too deeply");
        Class<?> c = x.getClass();
        if (c == String.class || c == Integer.class || c == Long.class || c == Double.class || c == Boolean.class
                || c == Character.class || c == Float.class || c == Short.class || c == Byte.class
                || c == java.math.BigInteger.class || c == java.math.BigDecimal.class) return x;
        if (c.isArray()) {
            if (c.getComponentType().isPrimitive()) return x;
            Object[] a = java.util.Arrays.copyOf((Object[]) x, ((Object[]) x).length);
            for (int i = 0; i < a.length; i++) a[i] = copy(a[i], depth + 1);
            return a;
        }
        if (x instanceof java.util.Optional) {
            java.util.Optional<?> o = (java.util.Optional<?>) x;
            return o.isPresent() ? java.util.Optional.of(copy(o.get(), depth + 1)) : java.util.Optional.empty();
        }
        if (x instanceof java.util.Map) {
            java.util.Map<Object, Object> m = c == java.util.HashMap.class ? new java.util.HashMap<>()
                    : c == java.util.TreeMap.class && ((java.util.TreeMap<?, ?>) x).comparator() == null ? new java.util.TreeMap<>()
                    : new java.util.LinkedHashMap<>();
            for (java.util.Map.Entry<?, ?> e : ((java.util.Map<?, ?>) x).entrySet()) {
                m.put(copy(e.getKey(), depth + 1), copy(e.getValue(), depth + 1));
            }
            return m;
        }
        if (x instanceof java.util.Set) {
            java.util.Set<Object> s = c == java.util.HashSet.class ? new java.util.HashSet<>()
                    : c == java.util.TreeSet.class && ((java.util.TreeSet<?>) x).comparator() == null ? new java.util.TreeSet<>()
                    : new java.util.LinkedHashSet<>();
            for (Object e : (java.util.Set<?>) x) s.add(copy(e, depth + 1));
            return s;
        }
        if (x instanceof java.util.Collection) {
            java.util.Collection<Object> l = c == java.util.LinkedList.class ? new java.util.LinkedList<>()
                    : c == java.util.ArrayDeque.class ? new java.util.ArrayDeque<>() : new java.util.ArrayList<>();
            for (Object e : (java.util.Collection<?>) x) l.add(copy(e, depth + 1));
            return l;
        }
        if (x instanceof java.util.Map.Entry) {
            java.util.Map.Entry<?, ?> e = (java.util.Map.Entry<?, ?>) x;
            return new java.util.AbstractMap.SimpleImmutableEntry<>(copy(e.getKey(), depth + 1), copy(e.getValue(), depth + 1));
        }
        if (c.getClassLoader() == null && (x instanceof Enum || x instanceof Number || x instanceof CharSequence
                || x instanceof java.time.temporal.TemporalAccessor)) return x;  // JDK values, JDK behaviour
        throw new IllegalStateException("returned a " + c.getName() + " object, not plain data");
    }
}
"""
