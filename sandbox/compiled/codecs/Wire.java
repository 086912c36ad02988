// The Java codec of the plain-data wire (sandbox/compiled/wire.py has the grammar and the Python reference).
// Compiled, as package rrtf_w, into both programs of a process-separated Java run: the candidate's (its
// dispatcher reads calls on fd 3 and answers them) and the test's (stubs with the prompt's signatures send
// calls on fd 4). Values are encoded by their runtime class; decoding is typed by the declared Java type,
// given as text ("List<Optional<Integer>>") that the host parsed from the prompt, so the trusted side only
// builds the shape the signature promises, out of JDK classes, and every count is checked against the
// bytes left before anything is allocated.
import java.io.*;
import java.lang.reflect.Field;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.*;

public final class Wire {
    public static final int REPLY_LIMIT = 8 << 20, CALL_LIMIT = 64 << 20, NUMBER_CHARS = 40, DYNAMIC_DEPTH = 100;
    static final int ENCODE_DEPTH = 1000;  // a self-containing list ends here, not in a StackOverflowError
    static final int INTERN_CHARS = 1024;  // decoded strings up to this length are interned (see text())

    private Wire() { }

    /** A call that failed on the wire; the test's case reports its message alone (java_harness.py). */
    public static final class Failure extends RuntimeException {
        public Failure(String message) { super(message, null, false, false); }
    }

    // ------------------------------------------------------------------------------------------ types

    /** A declared Java type: a name ("int", "List", "[]" for arrays) and its type arguments. */
    public static final class Type {
        final String name;
        final Type[] args;
        Type(String name, Type[] args) { this.name = name; this.args = args; }
        Type arg(int i) { return i < args.length ? args[i] : OBJECT; }
    }

    static final Type OBJECT = new Type("Object", new Type[0]);

    /** Parses the normalised type text the host generated (no spaces, simple names). */
    public static Type type(String text) {
        int[] pos = {0};
        Type t = parseType(text, pos);
        if (pos[0] != text.length()) throw new IllegalArgumentException("bad type " + text);
        return t;
    }

    public static Type[] types(String... texts) {
        Type[] out = new Type[texts.length];
        for (int i = 0; i < texts.length; i++) out[i] = type(texts[i]);
        return out;
    }

    private static Type parseType(String s, int[] pos) {
        int start = pos[0];
        while (pos[0] < s.length() && (Character.isJavaIdentifierPart(s.charAt(pos[0])) || s.charAt(pos[0]) == '.')) pos[0]++;
        String name = s.substring(start, pos[0]);
        List<Type> args = new ArrayList<>();
        if (pos[0] < s.length() && s.charAt(pos[0]) == '<') {
            do { pos[0]++; args.add(parseType(s, pos)); } while (pos[0] < s.length() && s.charAt(pos[0]) == ',');
            if (pos[0] >= s.length() || s.charAt(pos[0]++) != '>') throw new IllegalArgumentException("bad type " + s);
        }
        Type t = new Type(name, args.toArray(new Type[0]));
        while (s.startsWith("[]", pos[0])) { pos[0] += 2; t = new Type("[]", new Type[] {t}); }
        return t;
    }

    // --------------------------------------------------------------------------------------- encoding

    static final class Out extends ByteArrayOutputStream {
        final int limit;
        Out(int limit) { super(256); this.limit = limit; }
        Out ascii(String s) {
            for (int i = 0; i < s.length(); i++) write(s.charAt(i));
            if (count > limit) throw new Failure("value larger than " + limit + " bytes");
            return this;
        }
        void raw(byte[] b) {
            if ((long) count + b.length > limit) throw new Failure("value larger than " + limit + " bytes");
            write(b, 0, b.length);
        }
    }

    static void encode(Out out, Object v, int depth) {
        if (depth > ENCODE_DEPTH) throw new Failure("value nested too deeply");
        if (v == null) out.ascii("n");
        else if (v instanceof Boolean) out.ascii((Boolean) v ? "T" : "F");
        else if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte || v instanceof BigInteger) {
            String digits = v.toString();
            if (digits.length() > NUMBER_CHARS) throw new Failure("integer longer than " + NUMBER_CHARS + " characters");
            out.ascii("i").ascii(digits).ascii(";");
        } else if (v instanceof Double) out.ascii("d").ascii(real((Double) v, Double.toString((Double) v))).ascii(";");
        else if (v instanceof Float) out.ascii("d").ascii(real((Float) v, Float.toString((Float) v))).ascii(";");
        else if (v instanceof Character) out.ascii("c" + (int) (Character) v + ";");
        else if (v instanceof CharSequence) {
            byte[] b = utf8(v.toString());
            out.ascii("s" + b.length + ":");
            out.raw(b);
        } else if (v instanceof Optional) {
            Optional<?> o = (Optional<?>) v;
            if (o.isPresent()) { out.ascii("o"); encode(out, o.get(), depth + 1); } else out.ascii("n");
        } else if (v instanceof Map) {
            Map<?, ?> m = (Map<?, ?>) v;
            List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());  // the count and the items agree
            out.ascii("m" + entries.size() + ":");
            for (Map.Entry<?, ?> e : entries) { encode(out, e.getKey(), depth + 1); encode(out, e.getValue(), depth + 1); }
        } else if (v instanceof Collection) {
            Object[] items = ((Collection<?>) v).toArray();
            out.ascii("l" + items.length + ":");
            for (Object x : items) encode(out, x, depth + 1);
        } else if (v.getClass().isArray()) {
            int n = java.lang.reflect.Array.getLength(v);
            out.ascii("l" + n + ":");
            for (int i = 0; i < n; i++) encode(out, java.lang.reflect.Array.get(v, i), depth + 1);
        } else if (v instanceof Map.Entry) {
            out.ascii("t2:");
            encode(out, ((Map.Entry<?, ?>) v).getKey(), depth + 1);
            encode(out, ((Map.Entry<?, ?>) v).getValue(), depth + 1);
        } else throw new Failure("cannot send a " + v.getClass().getName());
    }

    private static String real(double v, String text) {  // Java's toString round-trips; the grammar spells nan/inf
        return Double.isNaN(v) ? "nan" : Double.isInfinite(v) ? (v > 0 ? "inf" : "-inf") : text;
    }

    /** UTF-8, with lone surrogates as their 3-byte forms (Python's "surrogatepass"), so every String crosses. */
    static byte[] utf8(String s) {
        int n = s.length();
        boolean ascii = true;
        for (int i = 0; i < n && ascii; i++) ascii = s.charAt(i) < 0x80;
        if (ascii) return s.getBytes(StandardCharsets.ISO_8859_1);
        ByteArrayOutputStream b = new ByteArrayOutputStream(n + 16);
        for (int i = 0; i < n; i++) {
            int c = s.charAt(i);
            if (Character.isHighSurrogate((char) c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                c = Character.toCodePoint((char) c, s.charAt(++i));
            }
            if (c < 0x80) b.write(c);
            else if (c < 0x800) { b.write(0xc0 | c >> 6); b.write(0x80 | c & 0x3f); }
            else if (c < 0x10000) { b.write(0xe0 | c >> 12); b.write(0x80 | c >> 6 & 0x3f); b.write(0x80 | c & 0x3f); }
            else { b.write(0xf0 | c >> 18); b.write(0x80 | c >> 12 & 0x3f); b.write(0x80 | c >> 6 & 0x3f); b.write(0x80 | c & 0x3f); }
        }
        return b.toByteArray();
    }

    // --------------------------------------------------------------------------------------- decoding

    static final class In {
        final byte[] b;
        int pos;
        In(byte[] b, int pos) { this.b = b; this.pos = pos; }
        Failure bad(String why) { return new Failure("malformed value at byte " + pos + ": " + why); }
        int tag() {
            if (pos >= b.length) throw bad("truncated");
            return b[pos++];
        }
        String number() {  // up to NUMBER_CHARS characters before ';'
            int end = pos;
            while (end < b.length && end - pos <= NUMBER_CHARS && b[end] != ';') end++;
            if (end >= b.length || b[end] != ';' || end - pos > NUMBER_CHARS) throw bad("number too long or unterminated");
            String s = new String(b, pos, end - pos, StandardCharsets.ISO_8859_1);
            pos = end + 1;
            return s;
        }
        int count(int perItem) {  // a length, bounded by the bytes left
            int end = pos;
            long n = 0;
            while (end < b.length && b[end] >= '0' && b[end] <= '9' && end - pos < 10) n = n * 10 + (b[end++] - '0');
            if (end == pos || end >= b.length || b[end] != ':') throw bad("bad length");
            pos = end + 1;
            if (n * perItem > b.length - pos) throw bad("length beyond the frame");
            return (int) n;
        }
    }

    static BigInteger integer(In in) {
        String s = in.number();
        if (!s.matches("-?[0-9]+")) throw in.bad("bad integer " + s);
        return new BigInteger(s);
    }

    static long integer(In in, long min, long max, String type) {
        BigInteger v = integer(in);
        if (v.bitLength() > 63 || v.longValue() < min || v.longValue() > max) throw in.bad(v + " does not fit " + type);
        return v.longValue();
    }

    static double real(In in) {
        String s = in.number();
        switch (s) {
            case "nan": return Double.NaN;
            case "inf": return Double.POSITIVE_INFINITY;
            case "-inf": return Double.NEGATIVE_INFINITY;
            default:
                if (!s.matches("-?[0-9]*\\.?[0-9]*([eE][-+]?[0-9]+)?") || !s.matches(".*[0-9].*")) throw in.bad("bad float " + s);
                return Double.parseDouble(s);
        }
    }

    static float real32(In in) {  // parsed from the text itself: one rounding, not two
        String s = in.number();
        in.pos -= s.length() + 1;
        double d = real(in);
        return Double.isNaN(d) || Double.isInfinite(d) ? (float) d : Float.parseFloat(s);
    }

    /** Strings are interned: HumanEvalPack's Java/137 compares a returned Object with a literal by `==`. */
    static String text(In in) {
        int n = in.count(1);
        String s = fromUtf8(in, n);
        return s.length() <= INTERN_CHARS ? s.intern() : s;
    }

    static String fromUtf8(In in, int n) {
        byte[] b = in.b;
        int end = in.pos + n, i = in.pos;
        StringBuilder sb = new StringBuilder(n);
        while (i < end) {
            int c = b[i] & 0xff, need = c < 0x80 ? 0 : c >= 0xf0 && c < 0xf5 ? 3 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : -1;
            if (need < 0 || i + need >= end) throw in.bad("bad UTF-8");
            int cp = need == 0 ? c : c & (0x3f >> need);
            for (int k = 1; k <= need; k++) {
                if ((b[i + k] & 0xc0) != 0x80) throw in.bad("bad UTF-8");
                cp = cp << 6 | b[i + k] & 0x3f;
            }
            if (need == 2 && cp < 0x800 || need == 3 && (cp < 0x10000 || cp > 0x10ffff)) throw in.bad("bad UTF-8");
            sb.appendCodePoint(cp);
            i += need + 1;
        }
        in.pos = end;
        return sb.toString();
    }

    /** One value of the declared type `t`; nesting below an Object counts against DYNAMIC_DEPTH. */
    static Object decode(In in, Type t, int depth) {
        String name = t.name;
        int at = in.pos, tag = in.tag();
        boolean primitive = Character.isLowerCase(name.charAt(0)) && !name.contains(".");
        if (tag == 'n' && !primitive && !name.equals("Optional") && !name.equals("void")) return null;
        switch (name) {
            case "Object": return dynamic(in, tag, depth);
            case "void": if (tag == 'n') return null; break;
            case "int": case "Integer": if (tag == 'i') return (int) integer(in, Integer.MIN_VALUE, Integer.MAX_VALUE, name); break;
            case "long": case "Long": if (tag == 'i') return integer(in, Long.MIN_VALUE, Long.MAX_VALUE, name); break;
            case "short": case "Short": if (tag == 'i') return (short) integer(in, Short.MIN_VALUE, Short.MAX_VALUE, name); break;
            case "byte": case "Byte": if (tag == 'i') return (byte) integer(in, Byte.MIN_VALUE, Byte.MAX_VALUE, name); break;
            case "BigInteger": if (tag == 'i') return integer(in); break;
            case "double": case "Double": if (tag == 'd') return real(in); break;
            case "float": case "Float": if (tag == 'd') return real32(in); break;
            case "boolean": case "Boolean": if (tag == 'T' || tag == 'F') return tag == 'T'; break;
            case "char": case "Character": if (tag == 'c') return (char) integer(in, 0, Character.MAX_VALUE, name); break;
            case "String": case "CharSequence": if (tag == 's') return text(in); break;
            case "Optional":
                if (tag == 'n') return Optional.empty();
                if (tag == 'o') return Optional.of(nonNull(in, decode(in, t.arg(0), depth + 1)));
                break;
            case "[]": if (tag == 'l') return array(in, t.arg(0), depth); break;
            case "List": case "ArrayList": case "Collection": case "Iterable": case "LinkedList":
            case "Set": case "HashSet": case "LinkedHashSet": case "TreeSet":
                if (tag == 'l') {
                    int n = in.count(1);
                    Collection<Object> c = name.equals("LinkedList") ? new LinkedList<>() : name.equals("TreeSet") ? new TreeSet<>()
                            : name.endsWith("Set") ? new LinkedHashSet<>() : new ArrayList<>(n);
                    for (int i = 0; i < n; i++) c.add(decode(in, t.arg(0), depth + 1));
                    return c;
                }
                break;
            case "Map": case "HashMap": case "LinkedHashMap": case "TreeMap":
                if (tag == 'm') {
                    int n = in.count(2);
                    Map<Object, Object> m = name.equals("TreeMap") ? new TreeMap<>() : new LinkedHashMap<>();
                    for (int i = 0; i < n; i++) m.put(decode(in, t.arg(0), depth + 1), decode(in, t.arg(1), depth + 1));
                    return m;
                }
                break;
            default: throw in.bad("no decoder for " + name);
        }
        in.pos = at;
        throw in.bad("expected " + name + ", got '" + (char) tag + "'");
    }

    private static Object nonNull(In in, Object v) {
        if (v == null) throw in.bad("Optional of null");
        return v;
    }

    static Object array(In in, Type elem, int depth) {
        int n = in.count(1);
        Object a = java.lang.reflect.Array.newInstance(classOf(elem), n);
        for (int i = 0; i < n; i++) java.lang.reflect.Array.set(a, i, decode(in, elem, depth + 1));
        return a;
    }

    private static final Map<String, Class<?>> CLASSES = new HashMap<>();
    static {
        Class<?>[] known = {int.class, long.class, short.class, byte.class, double.class, float.class, boolean.class, char.class,
            Integer.class, Long.class, Short.class, Byte.class, Double.class, Float.class, Boolean.class, Character.class,
            String.class, CharSequence.class, BigInteger.class, Optional.class, List.class, ArrayList.class, LinkedList.class,
            Collection.class, Iterable.class, Set.class, HashSet.class, LinkedHashSet.class, TreeSet.class, Map.class,
            HashMap.class, LinkedHashMap.class, TreeMap.class};
        for (Class<?> c : known) CLASSES.put(c.getSimpleName(), c);
    }

    /** The class an array of `t` holds (the decoders above build instances of it: LinkedHashMap is a HashMap). */
    static Class<?> classOf(Type t) {
        if (t.name.equals("[]")) return java.lang.reflect.Array.newInstance(classOf(t.arg(0)), 0).getClass();
        return CLASSES.getOrDefault(t.name, Object.class);
    }

    /** An Object: the tag says what it is (bounded nesting: the type does not bound it). */
    static Object dynamic(In in, int tag, int depth) {
        if (depth > DYNAMIC_DEPTH) throw in.bad("nested too deeply");
        switch (tag) {
            case 'n': return null;
            case 'T': return Boolean.TRUE;
            case 'F': return Boolean.FALSE;
            case 'i': {
                BigInteger v = integer(in);
                return v.bitLength() < 32 ? (Object) v.intValue() : v.bitLength() < 64 ? (Object) v.longValue() : v;
            }
            case 'd': return real(in);
            case 'c': return (char) integer(in, 0, Character.MAX_VALUE, "char");
            case 's': return text(in);
            case 'o': return Optional.of(nonNull(in, dynamic(in, in.tag(), depth + 1)));
            case 'l': case 't': {
                int n = in.count(1);
                List<Object> l = new ArrayList<>(n);
                for (int i = 0; i < n; i++) l.add(dynamic(in, in.tag(), depth + 1));
                return l;
            }
            case 'm': {
                int n = in.count(2);
                Map<Object, Object> m = new LinkedHashMap<>();
                for (int i = 0; i < n; i++) m.put(dynamic(in, in.tag(), depth + 1), dynamic(in, in.tag(), depth + 1));
                return m;
            }
            default: in.pos--; throw in.bad("unknown tag '" + (char) tag + "'");
        }
    }
    // ------------------------------------------------------------------------------------ connections

    /** One end of the calls socket, by its fd number (wire.py: 3 in the candidate's program, 4 in the test's).
     *  A socket cannot be reopened through /proc, so the FileDescriptor is made by hand: both JVMs run with
     *  --add-opens java.base/java.io=ALL-UNNAMED. */
    static final class Conn {
        final InputStream in;
        final OutputStream out;

        Conn(int fd) throws ReflectiveOperationException {
            FileDescriptor d = new FileDescriptor();
            Field f = FileDescriptor.class.getDeclaredField("fd");
            f.setAccessible(true);
            f.setInt(d, fd);
            in = new BufferedInputStream(new FileInputStream(d), 1 << 16);
            out = new FileOutputStream(d);
        }

        /** One frame's payload; null at a clean end of stream. The length is checked before anything is read. */
        byte[] read(int limit) throws IOException {
            long n = 0;
            int digits = 0, c;
            while ((c = in.read()) >= '0' && c <= '9') {
                if (++digits > 10) throw new Failure("bad frame header");
                n = n * 10 + c - '0';
            }
            if (c < 0 && digits == 0) return null;
            if (c != '\n' || digits == 0) throw new Failure(c < 0 ? "truncated frame" : "bad frame header");
            if (n > limit) throw new Failure("a frame of " + n + " bytes, over the limit of " + limit);
            byte[] b = new byte[(int) n];
            for (int got = 0, k; got < n; got += k) {
                if ((k = in.read(b, got, (int) n - got)) < 0) throw new Failure("truncated frame");
            }
            return b;
        }

        void write(byte[] payload) throws IOException {
            byte[] head = (payload.length + "\n").getBytes(StandardCharsets.ISO_8859_1);
            byte[] all = Arrays.copyOf(head, head.length + payload.length);
            System.arraycopy(payload, 0, all, head.length, payload.length);
            out.write(all);
            out.flush();
        }
    }

    // ---------------------------------------------------------------------- the test's side: the stubs

    private static Conn test;
    private static String lost;  // why the calls socket cannot be used any more (the stream is out of step)

    /** A call of the candidate: the arguments go as plain data, the reply comes back as the declared type.
     *  Anything but a well-formed reply of that type is a Failure, which fails the test's case. */
    public static Object call(String name, Type ret, Object[] args) {
        if (lost != null) throw new Failure(lost);
        Out o = new Out(CALL_LIMIT);
        encode(o, name, 0);
        encode(o, Arrays.asList(args), 0);
        byte[] reply;
        try {
            if (test == null) test = new Conn(4);
            test.write(o.toByteArray());
            reply = test.read(REPLY_LIMIT);
            if (reply == null) lost = "the candidate's program ended before it replied";
        } catch (IOException e) {
            lost = "the candidate's program has ended (" + e.getMessage() + ")";
            reply = null;
        } catch (Failure e) {
            lost = "bad reply from the candidate's program: " + e.getMessage();
            reply = null;
        } catch (ReflectiveOperationException e) {
            lost = "no calls socket: " + e;
            reply = null;
        }
        if (reply == null) throw new Failure(lost);
        In in = new In(reply, 1);
        try {
            if (reply.length > 0 && reply[0] == 'R') {
                Object v = decode(in, ret, 0);
                if (in.pos != reply.length) throw in.bad("trailing bytes");
                return v;
            }
            if (reply.length > 0 && reply[0] == 'E' && in.tag() == 's') {
                String m = text(in);
                throw new Failure("candidate raised: " + (m.length() > 500 ? m.substring(0, 500) : m));
            }
            throw new Failure("not a reply");
        } catch (Failure e) {
            throw e.getMessage().startsWith("candidate raised") ? e : new Failure("malformed reply: " + e.getMessage());
        } catch (RuntimeException e) {
            throw new Failure("malformed reply: " + e);
        }
    }

    // ------------------------------------------------------------------ the candidate's side: dispatch

    /** What the generated dispatcher of the candidate's program uses: calls in, replies out, on fd 3. */
    public static final class Server {
        private final Conn c;
        private byte[] frame;
        private int argsAt;

        public Server() throws ReflectiveOperationException { c = new Conn(3); }

        /** The next call's method name; null when the test's program is done (the dispatcher then exits 0). */
        public String next() throws IOException {
            frame = c.read(CALL_LIMIT);
            if (frame == null) return null;
            In in = new In(frame, 0);
            if (in.tag() != 's') throw in.bad("not a call");
            String name = text(in);
            argsAt = in.pos;
            return name;
        }

        public Object[] args(Type... types) {
            In in = new In(frame, argsAt);
            if (in.tag() != 'l' || in.count(1) != types.length) throw in.bad("expected " + types.length + " arguments");
            Object[] a = new Object[types.length];
            for (int i = 0; i < a.length; i++) a[i] = decode(in, types[i], 0);
            return a;
        }

        public void reply(Object v) {
            byte[] p;
            try {
                Out o = new Out(REPLY_LIMIT);
                o.write('R');
                encode(o, v, 0);
                p = o.toByteArray();
            } catch (Failure | StackOverflowError e) {
                raise(e);
                return;
            }
            send(p);
        }

        public void raise(Throwable t) {
            String m;
            try {
                m = t instanceof Failure ? t.getMessage() : t.getClass().getName() + (t.getMessage() != null ? ": " + t.getMessage() : "");
            } catch (Throwable e) {
                m = t.getClass().getName();
            }
            Out o = new Out(REPLY_LIMIT);
            o.write('E');
            encode(o, m.length() > 1000 ? m.substring(0, 1000) : m, 0);
            send(o.toByteArray());
        }

        private void send(byte[] p) {
            try {
                c.write(p);
            } catch (IOException e) {
                Runtime.getRuntime().halt(0);  // the test's program has gone: nothing is waiting for this
            }
        }
    }
}
