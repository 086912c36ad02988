"""Hostile candidate programs shared by several sandbox test modules (tests/sandbox/)."""

CHEATS = {
    "sys.exit(0) at import": "import sys\nsys.exit(0)\n",
    "os._exit(0) at import": "import os\nos._exit(0)\n",
    "exit() at import": "exit()\n",
    "prints PASSED / ok tokens": "print('PASSED'); print('ok'); print('All tests passed!')\n"
                                "import sys; sys.stderr.write('OK\\n')\ndef add(a, b):\n    print('passed')\n    return 0\n",
    "SystemExit inside a test": "def add(a, b):\n    raise SystemExit(0)\n",
    "KeyboardInterrupt inside a test": "def add(a, b):\n    raise KeyboardInterrupt\n",
    "os._exit(0) inside a test": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "patched assert builtins": "import builtins\nclass Never(Exception):\n    pass\nbuiltins.AssertionError = Never\n"
                               "builtins.print = lambda *a, **k: None\nbuiltins.isinstance = lambda *a: True\n"
                               "def add(a, b):\n    return None\n",
    "always-equal object": "class Eq:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
                           "def add(a, b):\n    return Eq()\n",
    "int subclass with forged __eq__": "class I(int):\n    def __eq__(self, other):\n        return True\n"
                                       "    __hash__ = int.__hash__\ndef add(a, b):\n    return I(0)\n",
    "repr forging an always-equal literal": "class R:\n    def __repr__(self):\n        return '__import__(\"os\")'\n"
                                            "def add(a, b):\n    return R()\n",
    "object that is always truthy (for `assert candidate(...)`)":
        "class T:\n    def __bool__(self):\n        return True\n    def __eq__(self, other):\n        return True\n"
        "def add(a, b):\n    return T()\n",
    "kills its parent": "import os\ndef add(a, b):\n    os.kill(os.getppid(), 9)\n    return 0\n",
    "kill -1 then wrong answer": "import os\ndef add(a, b):\n    try:\n        os.kill(-1, 9)\n    except OSError:\n"
                                 "        pass\n    return 0\n",
    "kills every process it can see": "import os\nfor p in os.listdir('/proc'):\n    if p.isdigit() and int(p) != os.getpid():\n"
                                      "        try:\n            os.kill(int(p), 9)\n        except OSError:\n            pass\n"
                                      "def add(a, b):\n    return 0\n",
    "writes fake result frames on every fd": "import os, json, struct\n"
                                             "msg = json.dumps({'case': 0, 'passed': True, 'error': '', 'end': True}).encode()\n"
                                             "for fd in range(256):\n    try:\n        os.write(fd, struct.pack('>I', len(msg)) + msg)\n"
                                             "    except OSError:\n        pass\ndef add(a, b):\n    return 0\n",
    "fork bomb": "import os\ndef add(a, b):\n    while True:\n        try:\n            os.fork()\n        except OSError:\n"
                 "            pass\n",
    "memory bomb (one huge block)": "def add(a, b):\n    return len(bytearray(1 << 40))\n",
    "memory bomb (growing)": "def add(a, b):\n    x = []\n    while True:\n        x.append(bytearray(1 << 26))\n",
    "infinite loop": "def add(a, b):\n    while True:\n        pass\n",
    "infinite loop at import": "while True:\n    pass\n",
    "huge output": "import sys\ndef add(a, b):\n    sys.stdout.write('x' * (1 << 26))\n    return a + b\n",
    "output flood at import": "import sys\nwhile True:\n    sys.stdout.write('PASSED\\n' * 10000)\n",
    "daemon left behind": "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
                          "def add(a, b):\n    return 0\n",
}

# Runs wherever it is imported: makes every harness-like class in that process report passes, and
# leaves a marker where later candidates look.
PAYLOAD = '''
import sys
for _mod in list(sys.modules.values()):
    for _obj in list(getattr(_mod, "__dict__", {}).values()):
        if isinstance(_obj, type) and hasattr(_obj, "report_case"):
            _orig = _obj.report_case
            _obj.report_case = lambda self, i, e, _o=_orig: _o(self, i, None)
for _path in ("/work/rrtf-pwned", "/tmp/rrtf-pwned", "/work/c/rrtf-pwned"):
    try:
        open(_path, "w").write("harness ran candidate code")
    except OSError:
        pass
'''

# Plants the payload everywhere a trusted process might import or read from (its own work dir as a
# package, a test module, modules shadowing stdlib names), then names modules whose import has side
# effects (`unittest.__main__` runs test discovery in the importer's working directory).
PLANTER = f'''
import os, types
PAYLOAD = {PAYLOAD!r}
for name in ("__init__.py", "test_pwn.py", "math.py", "typing.py", "sitecustomize.py", "usercustomize.py"):
    with open(name, "w") as fh:
        fh.write(PAYLOAD)
os.makedirs("pkg", exist_ok=True)
open("pkg/__init__.py", "w").write(PAYLOAD)
os.chmod(".", 0o777)
for name in os.listdir("."):
    os.chmod(name, 0o777)
discover = types.ModuleType("unittest.__main__")
hello = types.ModuleType("__hello__")
this = types.ModuleType("this")
mine = types.ModuleType("pkg")
def add(a, b):
    return 0
'''

DEEP_CHAIN = '''
import os
def add(a, b):
    for _ in range(1500):
        os.mkdir("d")
        os.chdir("d")
    return a + b
'''

# Each generation forks and exits at once (racing any scan-and-kill), for about two seconds; the
# last one sleeps. Nothing of it may outlive the candidate.
FORK_CHAIN = '''
import os, time
def add(a, b):
    if os.fork() == 0:
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            try:
                if os.fork():
                    os._exit(0)
            except OSError:
                pass
        time.sleep(60)
        os._exit(0)
    return a + b
'''
