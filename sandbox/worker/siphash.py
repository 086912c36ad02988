"""SipHash-2-4 (Aumasson & Bernstein, 2012): the MAC of compiled programs' report lines.

The harness inside a compiled program tags each report line with SipHash-2-4 under a per-run
128-bit key; the runner (sandbox/worker/runner.py) accepts only lines whose tag verifies. The same
function exists in C++ (sandbox/languages/cpp.py) and Java (sandbox/languages/java.py); tests check
all three against the reference vectors.
"""
from __future__ import annotations

MASK = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & MASK


def _rounds(v0: int, v1: int, v2: int, v3: int, n: int) -> tuple[int, int, int, int]:
    for _ in range(n):
        v0 = (v0 + v1) & MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash24(key: bytes, message: bytes) -> int:
    if len(key) != 16:
        raise ValueError("SipHash needs a 16-byte key")
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573
    end = len(message) - len(message) % 8
    for i in range(0, end, 8):
        m = int.from_bytes(message[i:i + 8], "little")
        v3 ^= m
        v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, 2)
        v0 ^= m
    last = ((len(message) & 0xFF) << 56) | int.from_bytes(message[end:], "little")
    v3 ^= last
    v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, 2)
    v0 ^= last
    v2 ^= 0xFF
    v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, 4)
    return v0 ^ v1 ^ v2 ^ v3


def tag(key: bytes, message: str) -> str:
    """The 16-hex-digit tag of one report line."""
    return format(siphash24(key, message.encode()), "016x")
