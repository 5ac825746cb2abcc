"""Which devices a run uses: ``"cpu"``, ``"gpu"`` (NVIDIA CUDA, AMD ROCm), ``"tpu"``, or None (JAX's choice).

JAX names its GPU backends after their runtime: ``cuda``, ``rocm`` (and ``oneapi`` for Intel); ``gpu`` is
an alias that JAX expands to all of them.  ``jax.devices("gpu")`` resolves the alias to whichever runtime
started, but restricting JAX with ``jax_platforms="gpu"`` (or ``JAX_PLATFORMS=gpu``) makes JAX start
every one of them and fail on the first that is not installed ("Unable to initialize backend 'rocm'" on
an NVIDIA machine, JAX 0.10–0.11).  This module resolves ``gpu`` to the runtime whose JAX plugin is
installed instead, read from package metadata: the ``jax_plugins`` entry points and namespace modules
JAX itself loads its plugins from (``jax-cuda13-pjrt`` advertises ``xla_cuda13``, ``jax-rocm7-pjrt``
``xla_rocm7``), so nothing is started to find out.

* :func:`resolve` — the JAX backend name for a platform (``"gpu"`` → ``"cuda"`` or ``"rocm"``), after
  checking that JAX's support for it is installed;
* :func:`restrict_to` — restrict JAX to that backend (``jax_platforms``).  It must run before any JAX
  computation: JAX starts its backends once, at the first one, and ignores the setting afterwards
  (:func:`restrict_to` raises ``RuntimeError`` if it comes too late to have an effect);
* :func:`devices_for` — the devices of a platform;
* :func:`on_host` — whether an array's numbers can be read without waiting for an accelerator.

Whatever is missing is a :class:`PlatformError` (a ``ValueError``) that says what to install:
``pip install -U "jax[cuda13]"`` (NVIDIA driver >= 580; ``"jax[cuda12]"`` with an older driver >= 525),
``pip install -U "jax[rocm7-local]"`` for an AMD GPU with ROCm 7 installed, ``pip install -U "jax[tpu]"``
on a Cloud TPU VM — JAX's installation guide, as of JAX 0.11.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import re
from importlib import metadata
from pathlib import Path

import jax

__all__ = [
    "GPU_RUNTIMES",
    "PLATFORMS",
    "PlatformError",
    "devices_for",
    "installed_gpu_runtimes",
    "on_host",
    "resolve",
    "restrict_to",
    "tpu_runtime_installed",
]

PLATFORMS = ("cpu", "gpu", "tpu")  # what a user asks for; "cuda", "rocm" and "oneapi" are accepted too
GPU_RUNTIMES = ("cuda", "rocm", "oneapi")  # JAX's GPU backends, in JAX's order of preference

CUDA13 = 'pip install -U "jax[cuda13]"'
CUDA12 = 'pip install -U "jax[cuda12]"'
ROCM = 'pip install -U "jax[rocm7-local]"'
TPU = 'pip install -U "jax[tpu]"'
CUDA13_MIN_DRIVER, CUDA12_MIN_DRIVER = 580, 525

_VENDOR = {"cuda": "NVIDIA", "rocm": "AMD", "oneapi": "Intel"}
_RUNTIME_NAME = {"cuda": "CUDA", "rocm": "ROCm", "oneapi": "oneAPI"}
_CHECK = {
    "cuda": (
        f"check that nvidia-smi lists it; jax[cuda13] needs NVIDIA driver >= {CUDA13_MIN_DRIVER} "
        f"(with an older driver, >= {CUDA12_MIN_DRIVER}: {CUDA12})"
    ),
    "rocm": f"check that rocm-smi lists it and that ROCm 7 is installed ({ROCM} targets ROCm 7)",
    "oneapi": "check Intel's extension for OpenXLA and its drivers",
}


class PlatformError(ValueError):
    """A platform that is unknown, or whose support or devices are missing; the message says what to do."""


def installed_gpu_runtimes() -> tuple[str, ...]:
    """The GPU runtimes (``"cuda"``, ``"rocm"``, ``"oneapi"``) whose JAX plugin is installed, in JAX's order.

    Read from the plugins JAX would load (``jax_plugins`` entry points and namespace modules, and
    ``PJRT_NAMES_AND_LIBRARY_PATHS``); nothing is imported or started."""
    names = {name.lower() for name in _plugin_names()}
    return tuple(runtime for runtime in GPU_RUNTIMES if any(runtime in name for name in names))


def tpu_runtime_installed() -> bool:
    """Whether JAX's TPU runtime (the ``libtpu`` package, or ``TPU_LIBRARY_PATH``) is there."""
    return bool(os.environ.get("TPU_LIBRARY_PATH")) or importlib.util.find_spec("libtpu") is not None


def resolve(platform: str | None) -> str | None:
    """The JAX backend for ``platform``: None stays None (JAX's choice), ``"cpu"`` and ``"tpu"`` stay,
    ``"gpu"`` becomes the installed GPU runtime (``"cuda"`` or ``"rocm"``).

    A platform whose JAX support is not installed, or an unknown name, is a :class:`PlatformError`.
    With both CUDA and ROCm plugins installed the GPU vendor present decides; when that cannot be told
    either, ``"gpu"`` is returned and JAX picks among the runtimes that start.  Starts nothing."""
    if platform is None:
        return None
    name = platform.strip().lower() if isinstance(platform, str) else platform
    if name == "cpu":
        return "cpu"
    if name == "tpu":
        if not tpu_runtime_installed():
            raise PlatformError(f"platform 'tpu': JAX's TPU support is not installed; on a Cloud TPU VM run  {TPU}")
        return "tpu"
    if name in GPU_RUNTIMES:
        if name not in installed_gpu_runtimes():
            raise PlatformError(_no_gpu_support(name))
        return name
    if name == "gpu":
        installed = installed_gpu_runtimes()
        if not installed:
            raise PlatformError(_no_gpu_support("gpu"))
        if len(installed) == 1:
            return installed[0]
        present = [runtime for runtime in installed if _vendor_present(runtime)]
        return present[0] if len(present) == 1 else "gpu"
    raise PlatformError(f"unknown platform {platform!r}; choose {', '.join(PLATFORMS)}")


def restrict_to(platform: str | None) -> str | None:
    """Make JAX start only ``platform``'s backend (see :func:`resolve`); returns that backend's name.

    Call it before any JAX computation (creating an array counts): JAX reads ``jax_platforms`` once,
    when it starts its backends.  Called later it raises ``RuntimeError``, unless JAX's default backend
    is that platform's already.  None leaves JAX's choice alone, except that a ``gpu`` in
    ``JAX_PLATFORMS`` is replaced by the installed runtime (JAX would otherwise try every GPU runtime
    and fail on the missing one)."""
    current = jax.config.jax_platforms or None
    if platform is None:
        backend, wanted = None, _without_gpu_alias(current)
    else:
        backend = resolve(platform)
        wanted = None if backend == "gpu" else backend  # both runtimes, vendor unclear: JAX's own discovery
    if wanted == current:
        return backend
    if _backends_started():
        if backend is None or _is_default(backend):
            return backend  # too late to change, and nothing to change
        raise RuntimeError(
            f"jaxnn.platforms.restrict_to({platform!r}) came after JAX started its backends (default: "
            f"{jax.default_backend()!r}), so it would have no effect; call it before any JAX computation"
        )
    jax.config.update("jax_platforms", wanted)
    return backend


def devices_for(platform: str | None) -> list[jax.Device]:
    """The devices of ``platform`` (``"cpu"``, ``"gpu"``, ``"tpu"``, or None for JAX's default backend).

    Does not change which backends JAX starts (:func:`restrict_to` does).  Missing support or no device is a
    :class:`PlatformError` in the user's terms, with the line to install it and JAX's own reason."""
    backend = resolve(platform)
    try:
        return list(jax.devices(backend) if backend is not None else jax.devices())
    except (RuntimeError, AssertionError) as error:  # JAX 0.10 asserts when jax_platforms names no backend it has
        raise PlatformError(_no_device(platform, backend, error)) from error


# ---------------------------------------------------------------------------------------------------


def _plugin_names() -> set[str]:
    names: set[str] = set()
    try:
        for entry_point in metadata.entry_points(group="jax_plugins"):
            names.update((entry_point.name, entry_point.value))
    except Exception:  # a broken distribution's metadata must not stop a run
        pass
    names.update(_namespace_plugins())
    for item in os.environ.get("PJRT_NAMES_AND_LIBRARY_PATHS", "").split(","):
        if item:
            names.add(item.split(os.path.pathsep)[0])
    return names


def _namespace_plugins() -> set[str]:
    """Modules of the ``jax_plugins`` namespace package (found, not imported)."""
    try:
        spec = importlib.util.find_spec("jax_plugins")
    except (ImportError, ValueError):
        return set()
    if spec is None or not spec.submodule_search_locations:
        return set()
    return {module.name for module in pkgutil.iter_modules(list(spec.submodule_search_locations))}


def _nvidia_driver() -> str | None:
    """The NVIDIA kernel driver's version (``"580.65.06"``), or None where there is none (or not Linux)."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r"\b(\d{3,})\.\d+(?:\.\d+)?\b", text)
    return match.group(0) if match else "unknown"


def _amd_gpu_present() -> bool:
    return Path("/dev/kfd").exists()  # the ROCm compute device; there with AMD's driver loaded


def _vendor_present(runtime: str) -> bool:
    if runtime == "cuda":
        return _nvidia_driver() is not None
    if runtime == "rocm":
        return _amd_gpu_present()
    return False


def _cuda_line(driver: str | None) -> str:
    """The CUDA install advice, fitted to the driver when its version is known."""
    major = int(driver.split(".")[0]) if driver and driver[0].isdigit() else None
    if major is not None and major < CUDA13_MIN_DRIVER:
        needs = f"jax[cuda13] needs driver >= {CUDA13_MIN_DRIVER}"
        if major >= CUDA12_MIN_DRIVER:
            return f"{CUDA12}  (this driver is {driver}; {needs})"
        return f"update the NVIDIA driver (this one is {driver}; {needs}), then {CUDA13}"
    return f"{CUDA13}  (NVIDIA driver >= {CUDA13_MIN_DRIVER}; with an older driver, >= {CUDA12_MIN_DRIVER}: {CUDA12})"


def _no_gpu_support(asked: str) -> str:
    driver, amd = _nvidia_driver(), _amd_gpu_present()
    if asked == "cuda" or (asked == "gpu" and driver is not None and not amd):
        found = f"this machine has an NVIDIA driver ({driver})" if driver else "for an NVIDIA GPU"
        return f"platform {asked!r}: JAX's CUDA support is not installed; {found}: {_cuda_line(driver)}"
    if asked == "rocm" or (asked == "gpu" and amd and driver is None):
        found = "this machine has an AMD GPU; with ROCm 7 installed" if amd else "for an AMD GPU, with ROCm 7 installed"
        return f"platform {asked!r}: JAX's ROCm support is not installed; {found}: {ROCM}"
    if asked == "oneapi":
        return "platform 'oneapi': JAX's oneAPI (Intel GPU) support is not installed; see Intel's extension for OpenXLA"
    return (
        f"platform {asked!r}: JAX has no GPU support installed; for an NVIDIA GPU: {_cuda_line(driver)}; "
        f"for an AMD GPU, with ROCm 7 installed: {ROCM}"
    )


def _no_device(platform: str | None, backend: str | None, error: Exception) -> str:
    said = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    restricted = jax.config.jax_platforms
    limit = (
        f"; JAX is limited to {restricted!r} (JAX_PLATFORMS / jax_platforms), so jaxnn.platforms.restrict_to() "
        "must run before any JAX computation"
        if restricted and backend not in (None, "gpu") and backend not in restricted.split(",")
        else ""
    )
    if backend is None:
        missing = _not_installed(restricted)
        if missing:  # JAX_PLATFORMS=cuda on a machine without JAX's CUDA support: JAX fails a bare assertion
            return f"{_no_gpu_support(missing[0])}; or set JAX_PLATFORMS=cpu (it is {restricted!r}) to use the CPU"
        hint = ""
        if restricted and "gpu" in restricted.split(","):
            hint = "; name the GPU runtime (JAX_PLATFORMS=cuda or rocm) rather than gpu, or call restrict_to(None)"
        return f"JAX could not start its default backend (JAX says: {said}){hint}"
    if backend == "cpu":
        return f"platform 'cpu': JAX could not start its CPU backend (JAX says: {said}){limit}"
    if backend == "tpu":
        return (
            f"platform {platform!r}: no TPU found (JAX says: {said}){limit}; TPUs are used from a Cloud TPU VM "
            f"with  {TPU}"
        )
    runtimes = GPU_RUNTIMES if backend == "gpu" else (backend,)
    checks = "; ".join(f"for an {_VENDOR[r]} GPU, {_CHECK[r]}" for r in runtimes if r in installed_gpu_runtimes())
    installed = "/".join(_RUNTIME_NAME[r] for r in runtimes if r in installed_gpu_runtimes()) or "GPU"
    return (
        f"platform {platform!r}: JAX's {installed} support is installed but found no usable GPU "
        f"(JAX says: {said}){limit}; {checks or 'check the GPU driver'}"
    )


def _not_installed(platforms: str | None) -> list[str]:
    """The GPU runtimes (or ``gpu``) that ``platforms`` (a ``jax_platforms`` value) names, when none of its names
    is a backend JAX can start here (no CPU, no installed GPU runtime): [] otherwise."""
    names = [name.strip().lower() for name in (platforms or "").split(",") if name.strip()]
    installed = {"cpu", *installed_gpu_runtimes(), *(("gpu",) if installed_gpu_runtimes() else ())}
    if not names or any(name in installed or name == "tpu" for name in names):
        return []
    return [name for name in names if name in (*GPU_RUNTIMES, "gpu")]


def _without_gpu_alias(platforms: str | None) -> str | None:
    """``platforms`` (a ``jax_platforms`` value) with ``gpu`` replaced by the installed GPU runtime."""
    if not platforms:
        return platforms
    names = [name.strip() for name in platforms.split(",") if name.strip()]
    if "gpu" not in [name.lower() for name in names]:
        return platforms
    runtime = resolve("gpu")
    if runtime == "gpu":
        return None  # both runtimes installed, vendor unclear: let JAX try what it has
    return ",".join(runtime if name.lower() == "gpu" else name for name in names)


def _is_default(backend: str) -> bool:
    default = jax.default_backend()
    gpu = {"gpu", *GPU_RUNTIMES}
    return default == backend or (default in gpu and backend in gpu)


def _backends_started() -> bool:
    """Whether JAX has started its backends (after which ``jax_platforms`` has no effect).  JAX has no
    public query; its internal one is used where it exists (0.10–0.11), else this says False."""
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):
        return False


def on_host(value) -> bool:
    """Whether ``value``'s numbers can be read without waiting for an accelerator: host data (NumPy arrays, lists),
    or a concrete JAX array on the CPU; not a tracer, nor an array on a GPU or TPU (reading it back would wait for
    the computation that makes it and copy it)."""
    if isinstance(value, jax.core.Tracer):
        return False
    return not isinstance(value, jax.Array) or all(device.platform == "cpu" for device in value.devices())
