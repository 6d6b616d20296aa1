"""Where the compiled numba kernels of this package are cached on disk.

numba's ``cache=True`` writes next to the source (``__pycache__``), which is
read-only in a system or container install, and otherwise falls back to a
numba-wide directory.  The kernels of ``ssb_beamline`` are cached instead in
a user cache directory of their own, so every new process (a replay, a
restarted queue worker, a new session) loads them instead of compiling:

1. ``$SSB_BEAMLINE_NUMBA_CACHE`` if set (e.g. a shared, pre-warmed directory);
2. ``$XDG_CACHE_HOME/ssb_beamline/numba``;
3. ``~/.cache/ssb_beamline/numba``.

``NUMBA_CACHE_DIR``, when the user sets it, still wins (numba's own locator is
asked first).  Directories are created private (0700).

Several processes may compile and write the same kernel at once: numba writes
each index and data file to a temporary file and renames it into place
(atomic on POSIX), and every entry is keyed by the source file's content hash
and the target CPU, so a reader sees either a complete old entry or a complete
new one.  :func:`compile_lock` lets the processes that warm the kernels up at
the same time (``make install``, several pytest-xdist workers, a replay next to
a live scan) take turns, so one compiles and the others load its result.
numba has no public hook for a per-package directory, so this
module adds a locator class to numba's (private) list of locators; if that
list is missing in a future numba, caching falls back to numba's default.

Loading a cached kernel is cheap (milliseconds), but numba first "refreshes"
its whole compiler context: it imports every implementation module it has and
fills its typing tables (about 1 s on the beamline node, most of a bare first
call).  Running machine code from the cache needs none of that, only numba's
runtime (NRT) for the arrays' reference counts: :func:`install_locator` also
makes the cache of *this package's* kernels initialise only the runtime
(:func:`_fast_load_overload`), whose compiled helpers are cached on disk too
(:func:`initialize_runtime`).  Likewise numba's dispatcher, before its first
dispatch in a process, imports every installed package that registers a numba
extension (``numba_extensions`` entry points: awkward, sparse, ... and what
they import, about 0.5 s); this package's kernels take only numpy arrays and
scalars, so their dispatch skips it (:func:`_install_fast_load`).  A kernel
that must still be compiled (a new signature, no cache entry) goes through
numba's compiler, which refreshes the context and loads the extensions itself
first; any error on the short path falls back to numba's own load, so the
result is numba's either way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ssb_beamline.private_files import make_private_dir, open_private

__all__ = [
    "CACHE_ENV",
    "compile_lock",
    "initialize_runtime",
    "install_locator",
    "kernel_cache_dir",
]

_LOCATOR_NAME = "PackageCacheLocator"

log = logging.getLogger(__name__)

#: Environment variable overriding the kernel cache directory.
CACHE_ENV = "SSB_BEAMLINE_NUMBA_CACHE"

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def kernel_cache_dir() -> Path:
    """The directory the compiled kernels are cached in (not created here).

    Examples
    --------
    >>> import os
    >>> os.environ[CACHE_ENV] = "/tmp/ssb-doc-cache"
    >>> str(kernel_cache_dir())
    '/tmp/ssb-doc-cache'
    >>> del os.environ[CACHE_ENV]
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ssb_beamline" / "numba"


def _locator_class() -> type | None:
    try:
        from numba.core import caching
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    if not hasattr(caching, "_SourceFileBackedLocatorMixin"):
        return None

    class PackageCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        """numba locator: functions defined in ``ssb_beamline`` -> :func:`kernel_cache_dir`."""

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            sub = self.get_suitable_cache_subpath(py_file)
            self._cache_path = str(kernel_cache_dir() / sub)

        def get_cache_path(self) -> str:
            return self._cache_path

        def ensure_cache_path(self) -> None:
            make_private_dir(Path(self._cache_path))
            super().ensure_cache_path()

        @classmethod
        def from_function(cls, py_func, py_file):
            try:
                Path(py_file).resolve().relative_to(_PACKAGE_DIR)
            except (ValueError, OSError):
                return None
            return super().from_function(py_func, py_file)

    return PackageCacheLocator


def install_locator() -> bool:
    """Make numba cache this package's kernels in :func:`kernel_cache_dir`.

    Must run before the ``@njit(cache=True)`` decorators (``_jit`` imports it
    first).  Idempotent.  Returns False when numba's locator list is not
    available (caching then uses numba's default places).

    Examples
    --------
    >>> install_locator()
    True
    """
    try:
        from numba.core import caching
    except ImportError:  # pragma: no cover
        return False
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    locators = getattr(impl, "_locator_classes", None)
    if not isinstance(locators, list):
        return False
    _install_fast_load(caching)
    if any(getattr(c, "__name__", "") == _LOCATOR_NAME for c in locators):
        return True
    cls = _locator_class()
    if cls is None:
        return False
    # after numba's NUMBA_CACHE_DIR locator (a user's explicit choice), before the rest
    pos = 1 if locators and locators[0].__name__ == "UserProvidedCacheLocator" else 0
    locators.insert(pos, cls)
    log.debug("numba kernels of ssb_beamline cached in %s", kernel_cache_dir())
    return True


def _is_package_cache(cache: object) -> bool:
    """Whether a numba cache object is one of this package's (our locator)."""
    locator = getattr(getattr(cache, "_impl", None), "locator", None)
    return type(locator).__name__ == _LOCATOR_NAME


def _install_lazy_extensions() -> None:
    """Let this package's dispatchers skip numba's scan of extension entry points (once)."""
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - numba is a dependency
        return
    original = getattr(Dispatcher, "_compilation_chain_init_hook", None)
    if original is None or getattr(original, "_ssb_lazy", False):
        return

    def hook(self):
        if _is_package_cache(getattr(self, "_cache", None)):
            return  # numpy-only kernels; compiling loads the extensions (refresh)
        return original(self)

    hook._ssb_lazy = True  # type: ignore[attr-defined]
    Dispatcher._compilation_chain_init_hook = hook


def _install_fast_load(caching: object) -> None:
    """Patch numba's ``Cache.load_overload`` with :func:`_fast_load_overload` (once)."""
    _install_lazy_extensions()
    cache_cls = getattr(caching, "Cache", None)
    original = getattr(cache_cls, "load_overload", None)
    if original is None or getattr(original, "_ssb_fast_load", False):
        return
    if not hasattr(cache_cls, "_load_overload"):  # pragma: no cover - another numba
        return

    def load_overload(self, sig, target_context):
        return _fast_load_overload(self, sig, target_context, original)

    load_overload._ssb_fast_load = True  # type: ignore[attr-defined]
    load_overload.__doc__ = original.__doc__
    cache_cls.load_overload = load_overload


def _fast_load_overload(cache, sig, target_context, original):
    """Load a cached kernel of this package without numba's full context refresh.

    numba's ``load_overload`` refreshes the target and typing contexts first
    (imports and registries: about 1 s in a new process); a cached kernel only
    needs the runtime, which ``rtsys.initialize`` sets up (idempotent).  Other
    packages' caches, and any failure here, take numba's own path.  Runs under
    numba's global compiler lock (``Dispatcher.compile`` holds it).
    """
    if not _is_package_cache(cache):
        return original(cache, sig, target_context)
    try:
        initialize_runtime(target_context)
        return cache._load_overload(sig, target_context)
    except Exception as exc:  # numba's own load (refresh first) decides
        log.debug("short load of a cached kernel failed (%s); numba's full load", exc)
        return original(cache, sig, target_context)


def initialize_runtime(target_context) -> str:
    """Start numba's runtime (NRT) for cached kernels, its helpers from the disk cache.

    ``nrt.rtsys.initialize`` compiles the runtime's LLVM helpers (reference counts,
    atomics) in every new process: ~20 ms of CPU, a third of loading the joint pass.
    Their machine code depends only on numba, llvmlite and the CPU, so it is cached
    here (``nrt-<key>.pkl`` in :func:`kernel_cache_dir`, written once, atomically,
    0600) and linked from there (~3 ms). Any problem (another numba, an unreadable
    file) falls back to numba's own initialisation. Idempotent.

    Returns
    -------
    str
        ``"ready"`` (already started), ``"disk"``, ``"compiled"`` (and cached) or
        ``"numba"`` (numba's own path).
    """
    from numba.core.runtime import nrt

    rtsys = nrt.rtsys
    if getattr(rtsys, "_init", True):  # started (or a numba without the flag)
        rtsys.initialize(target_context)
        return "ready"
    try:
        return _initialize_runtime_cached(rtsys, target_context)
    except Exception as exc:  # numba's own path decides
        log.debug("runtime helpers not from the disk cache (%s); numba's own", exc)
        rtsys.initialize(target_context)
        return "numba"


def _runtime_cache_path(codegen) -> Path:
    """The runtime helpers' cache file: keyed by numba, llvmlite and the target CPU."""
    import hashlib

    import llvmlite
    import numba

    key = repr((numba.__version__, llvmlite.__version__, codegen.magic_tuple()))
    return kernel_cache_dir() / f"nrt-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pkl"


def _initialize_runtime_cached(rtsys, target_context) -> str:
    """``rtsys.initialize`` with the compiled helpers read from (or written to) the cache."""
    import pickle

    import llvmlite.binding as ll
    from numba.core import config
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.runtime import _nrt_python, nrtdynmod

    codegen = target_context.codegen()
    path = _runtime_cache_path(codegen)
    with global_compiler_lock:
        if rtsys._init:
            return "ready"
        if config.NRT_STATS:
            _nrt_python.memsys_enable_stats()
        for py_name, address in _nrt_python.c_helpers.items():  # as numba registers them
            ll.add_symbol(py_name if py_name.startswith("_") else "NRT_" + py_name, address)
        try:
            state = pickle.loads(path.read_bytes())  # our private cache (0700), as numba's
        except Exception:  # none yet, unreadable or damaged: compile and (re)write it
            state = None
        if state is not None:
            library, source = codegen.unserialize_library(state), "disk"
        else:
            ir_module, library = nrtdynmod.create_nrt_module(target_context)
            library.enable_object_caching()
            library.add_ir_module(ir_module)
            library.finalize()
            _write_private(path, pickle.dumps(library.serialize_using_object_code()))
            source = "compiled"
        rtsys._library = library
        rtsys._init = True
    return source


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a 0600 temporary file renamed); never fails."""
    try:
        make_private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open_private(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache: compile again next time
        log.debug("runtime helpers not cached in %s: %s", path, exc)


_LOCK_NAME = ".compile.lock"


@contextlib.contextmanager
def compile_lock(timeout_s: float = 300.0) -> Iterator[bool]:
    """Hold the cache directory's compile lock (an ``flock``), waiting up to ``timeout_s``.

    Several processes that warm the kernels up at once would each compile
    them (correct, as the writes are atomic, but N times the CPU): inside the
    lock, the first compiles and the others then load from the disk cache.
    Never fails: yields False (and runs unlocked) when the lock cannot be had
    (no ``fcntl``, a read-only cache directory, or ``timeout_s`` passed).

    Parameters
    ----------
    timeout_s : float, default 300
        Longest wait for another process's compilation, s.

    Yields
    ------
    bool
        Whether the lock is held.

    Examples
    --------
    >>> with compile_lock() as held:
    ...     pass  # compile or load the kernels here
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield False
        return
    path = kernel_cache_dir()
    try:
        make_private_dir(path)
        fd = os.open(path / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        log.debug("no kernel compile lock in %s (%s): compiling unlocked", path, exc)
        yield False
        return
    try:
        held, deadline = False, time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except OSError:
                if time.monotonic() >= deadline:
                    log.warning(
                        "kernel compile lock busy for %.0f s: compiling unlocked", timeout_s
                    )
                    break
                time.sleep(0.05)
        yield held
    finally:
        os.close(fd)  # releases the lock
