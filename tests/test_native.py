"""Building and loading the C++ kernels: cache, disabling, and graceful failure."""

from __future__ import annotations

import logging

import pytest

from unifuse import native


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("UNIFUSE_CACHE_DIR", str(tmp_path))
    native._reset()
    yield tmp_path
    native._reset()


def test_disabled_by_environment(fresh, monkeypatch):
    monkeypatch.setenv("UNIFUSE_NATIVE", "0")
    assert not native.enabled()
    assert native.load("window_attention") is None
    assert not list(fresh.rglob("*.so"))


def test_missing_compiler_falls_back_with_a_reason(fresh, monkeypatch):
    monkeypatch.setenv("CXX", str(fresh / "no-such-compiler"))
    assert native.load("window_attention") is None
    assert native.status()["window_attention"] == f"unavailable: CXX={fresh / 'no-such-compiler'} is not an executable C++ compiler"


def test_no_compiler_on_the_path_falls_back(fresh, monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    assert native.load("window_attention") is None
    assert native.status()["window_attention"] == "unavailable: no C++ compiler (set CXX, or install g++)"


def test_failed_build_falls_back_and_leaves_no_partial_file(fresh, monkeypatch, tmp_path_factory):
    if native._compiler() is None:
        pytest.skip("no C++ compiler")
    src = tmp_path_factory.mktemp("csrc")
    (src / "broken.cpp").write_text("this is not C++\n")
    monkeypatch.setattr(native, "_SRC", src)
    assert native.load("broken") is None
    assert "failed on broken.cpp" in native.status()["broken"]
    assert not list((fresh / "native").glob("*"))


def test_built_once_then_loaded_from_the_cache(fresh):
    if native._compiler() is None:
        pytest.skip("no C++ compiler")
    lib = native.load("window_attention")
    assert lib is not None and lib.uf_wattn_abi() == 1
    built = list((fresh / "native").glob("window_attention-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    native._reset()
    assert native.load("window_attention") is not None
    assert built[0].stat().st_mtime_ns == stamp
    assert native.status()["window_attention"] == str(built[0])


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("UNIFUSE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert native.cache_dir() == tmp_path / "unifuse" / "native"
    monkeypatch.setenv("UNIFUSE_CACHE_DIR", str(tmp_path / "x"))
    assert native.cache_dir() == tmp_path / "x" / "native"


def test_unwritable_cache_uses_a_temporary_folder(fresh, monkeypatch):
    if native._compiler() is None:
        pytest.skip("no C++ compiler")
    blocker = fresh / "file"
    blocker.write_text("")
    monkeypatch.setenv("UNIFUSE_CACHE_DIR", str(blocker))  # <file>/native cannot be created
    monkeypatch.setattr(native.tempfile, "gettempdir", lambda: str(fresh / "tmp"))
    lib = native.load("window_attention")
    assert lib is not None
    assert native.status()["window_attention"].startswith(str(fresh / "tmp"))


def test_command_line_shows_build_notes_on_one_line(fresh, monkeypatch, capsys):
    """`unifuse ...` prints the kernel's build / fallback as ``unifuse: note: ...`` (the library itself stays quiet)."""
    from unifuse.cli import main as cli

    monkeypatch.setenv("CXX", str(fresh / "no-such-compiler"))
    log = logging.getLogger("unifuse.native")
    saved = (log.handlers[:], log.level, log.propagate)
    try:
        cli._show_native_notes()
        cli._show_native_notes()  # idempotent: one handler
        assert native.load("window_attention") is None
    finally:
        log.handlers[:], log.level, log.propagate = saved
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("unifuse: note: the window_attention kernel is unavailable:")
    assert err[0].endswith("using the PyTorch path (slower)")


def test_source_flags_line():
    assert native._source_flags(b"// a kernel\n//\n// unifuse-native-flags: -fno-math-errno -O0 -march=x\nint f();\n") == ("-fno-math-errno",)
    assert native._source_flags(b"// unifuse-native-flags is described elsewhere\n") == ()
    assert native._source_flags(b"int x; // unifuse-native-flags: -ffast-math\n") == ()  # only a comment line
    late = b"\n" * 45 + b"// unifuse-native-flags: -fno-math-errno\n"
    assert native._source_flags(late) == ()  # only the first 40 lines


def test_switch_restores_its_state():
    sw = native.Switch()
    with sw.disabled():
        assert not sw.on
        with sw.disabled():
            assert not sw.on
        assert not sw.on
    assert sw.on
    try:
        with sw.disabled():
            raise KeyError
    except KeyError:
        pass
    assert sw.on


def test_kernel_refuses_another_abi_version_and_sets_signatures():
    import ctypes

    if native.load("separable") is None:
        pytest.skip(f"no kernel here: {native.status()}")
    assert not native.Kernel("separable", "uf_sep_abi", 999, {}).available()
    k = native.Kernel("separable", "uf_sep_abi", 1, {"uf_sep_abi": ([], ctypes.c_int)})
    assert k.available() and k.lib().uf_sep_abi.restype is ctypes.c_int
    with k.disabled():
        assert not k.available()
    assert k.available()
