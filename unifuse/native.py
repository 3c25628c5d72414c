"""Small C++ kernels compiled on first use with the machine's compiler, loaded by ctypes.

The sources live in ``unifuse/csrc/``. :func:`load` builds ``csrc/<name>.cpp`` once per
machine with ``-O3 -march=native`` (the compiler picks the vector instructions this CPU has:
AVX2 on one machine, AVX-512 on another) into a shared library in a cache folder, and loads
it; later processes load the cached file. Everything degrades gracefully: with no compiler,
a failed build, an unwritable cache or ``UNIFUSE_NATIVE=0``, :func:`load` returns ``None``
and callers use their PyTorch path (:func:`status` says why).

* cache folder: ``$UNIFUSE_CACHE_DIR/native``, else ``$XDG_CACHE_HOME/unifuse/native``, else
  ``~/.cache/unifuse/native``; a temporary folder when none of them is writable.
* the file name carries a hash of the source, the compiler and its flags, and this CPU's
  feature flags, so a shared home folder on machines with different CPUs stays correct.
* builds write a temporary file and rename it, so concurrent processes are safe.
* compiler: ``$CXX``, else ``g++``, ``c++`` or ``clang++`` from ``PATH``.
* a source may add flags of its own with a line ``// unifuse-native-flags: -f...`` (only
  ``-f`` options are taken) among its first 40 lines.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

__all__ = ["load", "status", "enabled", "cache_dir", "Switch", "Kernel"]

_SRC = Path(__file__).resolve().parent / "csrc"
_FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fno-exceptions", "-fno-rtti")
_BUILD_TIMEOUT_S = 300
_LOCK = threading.Lock()
_LIBS: dict = {}  # name -> CDLL or None
_WHY: dict = {}  # name -> path of the library or the reason it is unavailable
_log = logging.getLogger(__name__)


class Switch:
    """An on/off switch for the callers of one kernel: ``switch.on`` is read before each use,
    and ``with switch.disabled():`` takes the PyTorch path inside the block (tests,
    comparisons, FLOP counting). Not thread-safe."""

    def __init__(self) -> None:
        self.on = True

    @contextmanager
    def disabled(self):
        saved, self.on = self.on, False
        try:
            yield
        finally:
            self.on = saved


class Kernel:
    """One kernel's library for its Python callers: built and loaded on first use by
    :func:`load`, checked against the ABI version the caller expects (``abi_symbol()`` must
    return ``abi``), its C signatures set (``signatures``: ``{function: (argtypes, restype)}``)
    before anyone sees it, and an on/off :class:`Switch`."""

    def __init__(self, name: str, abi_symbol: str, abi: int, signatures: dict) -> None:
        self.name, self._abi_symbol, self._abi, self._signatures = name, abi_symbol, abi, signatures
        self._lib = None
        self.switch = Switch()
        self.disabled = self.switch.disabled

    def lib(self) -> Optional[ctypes.CDLL]:
        """The library with its signatures set, or ``None`` (no compiler, ``UNIFUSE_NATIVE=0``,
        a failed build, another ABI version)."""
        if self._lib is None:
            lib = load(self.name)
            if lib is None or getattr(lib, self._abi_symbol)() != self._abi:
                return None
            for fn, (argtypes, restype) in self._signatures.items():
                getattr(lib, fn).argtypes, getattr(lib, fn).restype = argtypes, restype
            self._lib = lib  # published once its signatures are set
        return self._lib

    def available(self) -> bool:
        """Whether the kernel is switched on and built here."""
        return self.switch.on and self.lib() is not None


def enabled() -> bool:
    """False when ``UNIFUSE_NATIVE`` is ``0`` / ``false`` / ``no`` / ``off``."""
    return os.environ.get("UNIFUSE_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    """Where built libraries are kept (see the module docstring)."""
    root = os.environ.get("UNIFUSE_CACHE_DIR")
    if root:
        return Path(root) / "native"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "unifuse" / "native"


def _compiler() -> Optional[str]:
    """The compiler's path: ``$CXX`` (raises ``OSError`` when it is not an executable), else the
    first of ``g++``, ``c++``, ``clang++`` on the ``PATH``, else ``None``."""
    cxx = os.environ.get("CXX")
    if cxx:
        path = shutil.which(cxx)
        if path is None:
            raise OSError(f"CXX={cxx} is not an executable C++ compiler")
        return path
    for c in ("g++", "c++", "clang++"):
        path = shutil.which(c)
        if path:
            return path
    return None


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _source_flags(source: bytes) -> tuple:
    """The ``-f`` options a source asks for (``// unifuse-native-flags: ...`` in its first 40 lines)."""
    for line in source.decode("utf-8", "replace").splitlines()[:40]:
        head, sep, rest = line.strip().partition("unifuse-native-flags:")
        if sep and head.rstrip() == "//":
            return tuple(f for f in rest.split() if f.startswith("-f"))
    return ()


def _key(source: bytes, cxx: str, flags: tuple) -> str:
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    h = hashlib.sha256()
    for part in (source, cxx.encode(), version.encode(), " ".join(flags).encode(), platform.machine().encode(),
                 _cpu_flags().encode()):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _build(name: str) -> ctypes.CDLL:
    src = _SRC / f"{name}.cpp"
    source = src.read_bytes()
    cxx = _compiler()
    if cxx is None:
        raise OSError("no C++ compiler (set CXX, or install g++)")
    flags = (*_FLAGS, *_source_flags(source))
    lib_name = f"{name}-{_key(source, cxx, flags)}.so"
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / f"unifuse-native-{os.getuid() if hasattr(os, 'getuid') else 0}"):
        path = folder / lib_name
        if path.is_file():
            return ctypes.CDLL(str(path))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".so", dir=folder)
        except OSError:
            continue  # not writable: try the next folder
        os.close(fd)
        try:
            _log.info("building the %s kernel for this CPU with %s (once per machine, a few seconds)", name,
                      Path(cxx).name)
            res = subprocess.run([cxx, *flags, "-o", tmp, str(src)], capture_output=True, text=True,
                                 timeout=_BUILD_TIMEOUT_S)
            if res.returncode != 0:
                last = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise OSError(f"{Path(cxx).name} failed on {src.name}: {last}")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return ctypes.CDLL(str(path))
    raise OSError(f"no writable folder for {lib_name}")


def load(name: str) -> Optional[ctypes.CDLL]:
    """The library built from ``csrc/<name>.cpp``, or ``None`` (PyTorch fallback) when
    disabled or not buildable here. Built at most once per process and machine."""
    if not enabled():
        return None
    with _LOCK:
        if name not in _LIBS:
            try:
                lib = _build(name)
                _WHY[name] = lib._name
            except (OSError, subprocess.SubprocessError) as e:
                lib = None
                _WHY[name] = f"unavailable: {e}"
                _log.info("the %s kernel is %s; using the PyTorch path (slower)", name, _WHY[name])
            _LIBS[name] = lib
        return _LIBS[name]


def status() -> dict:
    """``{name: library path or 'unavailable: reason'}`` for the kernels loaded so far."""
    return dict(_WHY)


def _reset() -> None:
    """Forget loaded libraries (tests)."""
    with _LOCK:
        _LIBS.clear()
        _WHY.clear()
