"""How the Go programs of a run are built (sandbox/languages/go.py): the toolchain's paths, the warm build cache
(testify, its dependencies and the wire codec, compiled once per machine), the codec's package at a fixed GOPATH
entry, and the build command each compile unit runs in the sandbox."""
from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

from sandbox.compiled import go_pair
from sandbox.toolcache import build_once

GO = "/usr/bin/go"
GOCODE = "/usr/share/gocode"
ENV = "GO111MODULE=off CGO_ENABLED=0 GOFLAGS= GOTOOLCHAIN=local"

WARM_PROGRAM = """package main

import (
\t"fmt"
\t"math/rand"
\t"github.com/stretchr/testify/assert"
\t_ "bufio"
\t_ "encoding/hex"
\t_ "reflect"
\t_ "strconv"
\t_ "syscall"
\t_ "time"
\t_ "rrtfwire"
)

type t struct{}

func (t) Errorf(string, ...interface{}) {}

func main() { assert.New(t{}).Equal(1, rand.Intn(1)+1); fmt.Sprint() }
"""


@functools.cache
def wire_path() -> Path | None:
    """A GOPATH entry holding the codec's package `rrtfwire` (go_pair.wire_package), at a path that stays the
    same for every build: the go build cache keys a package by its directory, so the warm cache's compiled
    codec is reused only where the package is found at the path it was compiled from."""
    files = go_pair.wire_package()
    key = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()[:16]

    def write(tmp: Path) -> bool:
        (tmp / "src" / "rrtfwire").mkdir(parents=True)
        for name, data in files.items():
            (tmp / "src" / "rrtfwire" / name).write_bytes(data)
        return True

    return build_once(f"go-wire-{key}", "src/rrtfwire/api.go", write)


@functools.cache
def warm_cache() -> Path | None:
    """A go build cache holding testify, its dependencies and the codec (built once per machine), or None."""
    try:
        version = subprocess.run([GO, "version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    wire = wire_path()
    if wire is None:
        return None
    key = hashlib.sha256(f"{version}|{ENV}|{WARM_PROGRAM}|{wire}".encode()).hexdigest()[:16]

    def build(tmp: Path) -> bool:
        src = tmp / "gopath" / "src" / "warm"
        src.mkdir(parents=True)
        (src / "main.go").write_text(WARM_PROGRAM)
        env = dict(e.split("=", 1) for e in ENV.split())
        env.update(PATH="/usr/bin:/bin", HOME=str(tmp), GOPATH=f"{tmp / 'gopath'}:{GOCODE}:{wire}", GOCACHE=str(tmp / "cache"))
        try:
            ok = subprocess.run([GO, "build", "-o", str(tmp / "warm"), "."], cwd=src, env=env, capture_output=True,
                                timeout=600).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False
        (tmp / "cache" / "READY").write_text("ok")
        return ok

    built = build_once(f"go-cache-{key}", "cache/READY", build)
    return built / "cache" if built else None


def build_script(cache: Path | None, package: str, flags: str = "") -> list[str]:
    gocache = str(cache) if cache else "$PWD/.cache"
    wire = f":{wire_path()}" if wire_path() else ""
    return ["/bin/sh", "-c", f'export {ENV} GOPATH="$PWD:{GOCODE}{wire}" GOCACHE="{gocache}" GOTMPDIR="$PWD/.tmp"; '
                             f'mkdir -p .tmp; cd src/{package} && exec {GO} build {flags} -o ../../prog .']
