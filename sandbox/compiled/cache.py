"""What a language keeps between samples of the same problem: compiled test programs or objects, which do not
depend on the candidate (a small LRU of bytes, shared by the pool's threads)."""
from __future__ import annotations

import collections
import threading


class BytesCache:
    """A small LRU of compiled test objects (bytes), shared by the pool's threads."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, collections.OrderedDict(), threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
            return self.items.get(key)

    def put(self, key: str, value: bytes | None) -> None:
        if not value:
            return
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
