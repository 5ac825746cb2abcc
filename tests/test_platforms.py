"""``jaxnn.platforms``: cpu / gpu / tpu mapped to JAX's backends, and what to install when one is missing.

No accelerator is needed: what is installed (plugins, libtpu, drivers) and what JAX finds (``jax.devices``,
``jax_platforms``) are faked.  The last tests use the real JAX of this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from jaxnn import platforms
from jaxnn.platforms import PlatformError


class FakeJax:
    """What platforms.py asks JAX: its ``jax_platforms`` setting, its devices and its default backend."""

    def __init__(self, platforms_setting=None, devices=None, default="cpu"):
        self.config = SimpleNamespace(jax_platforms=platforms_setting, update=self._update)
        self.updates: list[tuple[str, object]] = []
        self.asked: list[str | None] = []
        self._devices = devices or {}
        self._default = default

    def _update(self, name, value):
        self.updates.append((name, value))
        setattr(self.config, name, value)

    def devices(self, backend=None):
        self.asked.append(backend)
        if backend not in self._devices:
            raise RuntimeError(f"Unknown backend {backend}. Available backends are ['cpu']")
        return self._devices[backend]

    def default_backend(self):
        return self._default


@pytest.fixture
def machine(monkeypatch):
    """A machine to describe: ``machine(plugins=..., driver=..., amd=..., libtpu=..., jax=FakeJax(...))``."""

    def describe(plugins=(), driver=None, amd=False, libtpu=False, jax=None, started=False):
        monkeypatch.setattr(platforms, "_plugin_names", lambda: set(plugins))
        monkeypatch.setattr(platforms, "_nvidia_driver", lambda: driver)
        monkeypatch.setattr(platforms, "_amd_gpu_present", lambda: amd)
        monkeypatch.setattr(platforms, "tpu_runtime_installed", lambda: libtpu)
        monkeypatch.setattr(platforms, "_backends_started", lambda: started)
        fake = jax or FakeJax()
        monkeypatch.setattr(platforms, "jax", fake)
        return fake

    return describe


# ---------------------------------------------------------------------------------------------------
# What is installed.


def test_gpu_runtimes_are_read_from_jax_plugin_entry_points(monkeypatch):
    found = []
    monkeypatch.setattr(platforms, "_namespace_plugins", lambda: set())
    monkeypatch.delenv("PJRT_NAMES_AND_LIBRARY_PATHS", raising=False)
    monkeypatch.setattr(platforms.metadata, "entry_points", lambda group: found if group == "jax_plugins" else [])
    assert platforms.installed_gpu_runtimes() == ()
    found[:] = [SimpleNamespace(name="xla_cuda13", value="jax_plugins.xla_cuda13")]
    assert platforms.installed_gpu_runtimes() == ("cuda",)
    found[:] = [SimpleNamespace(name="xla_rocm7", value="jax_plugins.xla_rocm7")]
    assert platforms.installed_gpu_runtimes() == ("rocm",)
    found.append(SimpleNamespace(name="xla_cuda12", value="jax_plugins.xla_cuda12"))
    assert platforms.installed_gpu_runtimes() == ("cuda", "rocm")  # JAX's order of preference


def test_gpu_runtimes_also_come_from_namespace_modules_and_the_pjrt_variable(monkeypatch):
    monkeypatch.setattr(platforms.metadata, "entry_points", lambda group: [])
    monkeypatch.setattr(platforms, "_namespace_plugins", lambda: {"jax_plugins.xla_rocm7"})
    monkeypatch.delenv("PJRT_NAMES_AND_LIBRARY_PATHS", raising=False)
    assert platforms.installed_gpu_runtimes() == ("rocm",)
    monkeypatch.setattr(platforms, "_namespace_plugins", lambda: set())
    monkeypatch.setenv("PJRT_NAMES_AND_LIBRARY_PATHS", f"cuda{os.path.pathsep}/opt/pjrt_c_api_gpu_plugin.so")
    assert platforms.installed_gpu_runtimes() == ("cuda",)


# ---------------------------------------------------------------------------------------------------
# The mapping.


@pytest.mark.parametrize(
    ("asked", "installed", "expected"),
    [
        (None, dict(), None),
        ("cpu", dict(), "cpu"),
        ("CPU", dict(), "cpu"),
        ("gpu", dict(plugins={"xla_cuda13"}), "cuda"),
        ("gpu", dict(plugins={"xla_cuda12"}), "cuda"),
        ("gpu", dict(plugins={"xla_rocm7"}), "rocm"),
        ("cuda", dict(plugins={"xla_cuda13"}), "cuda"),
        ("rocm", dict(plugins={"xla_rocm7"}), "rocm"),
        ("gpu", dict(plugins={"xla_cuda13", "xla_rocm7"}, driver="580.65.06"), "cuda"),
        ("gpu", dict(plugins={"xla_cuda13", "xla_rocm7"}, amd=True), "rocm"),
        ("gpu", dict(plugins={"xla_cuda13", "xla_rocm7"}), "gpu"),  # vendor unclear: JAX's discovery decides
        ("tpu", dict(libtpu=True), "tpu"),
    ],
)
def test_resolve_maps_a_platform_to_the_backend_that_is_installed(machine, asked, installed, expected):
    machine(**installed)
    assert platforms.resolve(asked) == expected


def test_an_unknown_platform_is_a_value_error(machine):
    machine()
    with pytest.raises(PlatformError, match=r"unknown platform 'quantum'; choose cpu, gpu, tpu") as raised:
        platforms.resolve("quantum")
    assert isinstance(raised.value, ValueError)


def test_devices_for_asks_jax_for_the_resolved_backend_never_the_gpu_alias(machine):
    gpus = [SimpleNamespace(platform="gpu", id=0), SimpleNamespace(platform="gpu", id=1)]
    fake = machine(plugins={"xla_cuda13"}, jax=FakeJax(devices={"cuda": gpus, "cpu": ["cpu0"], None: ["cpu0"]}))
    assert platforms.devices_for("gpu") == gpus
    assert platforms.devices_for("cpu") == ["cpu0"]
    assert platforms.devices_for(None) == ["cpu0"]
    assert fake.asked == ["cuda", "cpu", None]
    assert fake.updates == []  # devices_for changes no setting


# ---------------------------------------------------------------------------------------------------
# What to install: each message.


def test_no_gpu_support_names_the_nvidia_and_amd_install_lines(machine):
    machine()
    with pytest.raises(PlatformError) as raised:
        platforms.devices_for("gpu")
    message = str(raised.value)
    assert message.startswith("platform 'gpu': JAX has no GPU support installed")
    for line in ('pip install -U "jax[cuda13]"', 'pip install -U "jax[cuda12]"', 'pip install -U "jax[rocm7-local]"'):
        assert line in message
    assert "driver >= 580" in message


@pytest.mark.parametrize(
    ("driver", "advice", "not_advised"),
    [
        ("590.48.01", 'pip install -U "jax[cuda13]"', "update the NVIDIA driver"),
        (
            "575.57.08",
            'pip install -U "jax[cuda12]"  (this driver is 575.57.08; jax[cuda13] needs driver >= 580)',
            None,
        ),
        ("470.256.02", "update the NVIDIA driver (this one is 470.256.02", None),
    ],
)
def test_no_gpu_support_on_an_nvidia_machine_fits_the_advice_to_the_driver(machine, driver, advice, not_advised):
    machine(driver=driver)
    with pytest.raises(PlatformError) as raised:
        platforms.resolve("gpu")
    message = str(raised.value)
    assert f"JAX's CUDA support is not installed; this machine has an NVIDIA driver ({driver})" in message
    assert advice in message
    assert "rocm" not in message
    if not_advised:
        assert not_advised not in message


def test_no_gpu_support_on_an_amd_machine_names_the_rocm_line(machine):
    machine(amd=True)
    with pytest.raises(PlatformError, match=r"ROCm support is not installed; this machine has an AMD GPU") as raised:
        platforms.resolve("gpu")
    assert 'pip install -U "jax[rocm7-local]"' in str(raised.value) and "cuda" not in str(raised.value)


def test_asking_for_cuda_or_rocm_by_name_without_its_plugin(machine):
    machine(plugins={"xla_rocm7"})
    with pytest.raises(PlatformError, match=r"platform 'cuda': JAX's CUDA support is not installed.*jax\[cuda13\]"):
        platforms.resolve("cuda")
    machine(plugins={"xla_cuda13"})
    with pytest.raises(PlatformError, match=r"platform 'rocm': JAX's ROCm support is not installed.*rocm7-local"):
        platforms.resolve("rocm")


def test_no_tpu_runtime_names_the_tpu_line(machine):
    machine()
    with pytest.raises(PlatformError, match=r"TPU support is not installed; on a Cloud TPU VM run  pip install -U "):
        platforms.devices_for("tpu")


def test_a_cuda_plugin_without_a_usable_gpu_says_what_jax_said_and_what_to_check(machine):
    machine(plugins={"xla_cuda13"}, jax=FakeJax(devices={"cpu": ["cpu0"]}))
    with pytest.raises(PlatformError) as raised:
        platforms.devices_for("gpu")
    message = str(raised.value)
    assert message.startswith("platform 'gpu': JAX's CUDA support is installed but found no usable GPU")
    assert "JAX says: Unknown backend cuda" in message
    assert "nvidia-smi" in message and "driver >= 580" in message and 'pip install -U "jax[cuda12]"' in message
    assert isinstance(raised.value.__cause__, RuntimeError)


def test_a_rocm_plugin_without_a_usable_gpu_points_at_rocm(machine):
    machine(plugins={"xla_rocm7"}, jax=FakeJax())
    with pytest.raises(PlatformError, match=r"ROCm support is installed but found no usable GPU.*rocm-smi"):
        platforms.devices_for("gpu")


def test_libtpu_without_a_tpu(machine):
    machine(libtpu=True, jax=FakeJax())
    with pytest.raises(
        PlatformError, match=r"platform 'tpu': no TPU found \(JAX says: Unknown backend tpu.*jax\[tpu\]"
    ):
        platforms.devices_for("tpu")


def test_a_jax_restricted_to_another_platform_is_named(machine):
    machine(plugins={"xla_cuda13"}, jax=FakeJax(platforms_setting="cpu"))
    with pytest.raises(PlatformError, match=r"JAX is limited to 'cpu' \(JAX_PLATFORMS / jax_platforms\)"):
        platforms.devices_for("gpu")


def test_the_default_backend_failing_on_the_gpu_alias_suggests_the_runtime(machine):
    machine(plugins={"xla_cuda13"}, jax=FakeJax(platforms_setting="gpu"))
    with pytest.raises(PlatformError, match=r"default backend.*JAX_PLATFORMS=cuda or rocm\) rather than gpu"):
        platforms.devices_for(None)


def test_jax_platforms_naming_a_gpu_runtime_that_is_not_installed_says_what_to_install(machine):
    """JAX_PLATFORMS=cuda on a machine without JAX's CUDA plugin: JAX 0.10 fails ``assert _default_backend is not
    None`` deep in xla_bridge, and jaxnn-train showed that traceback."""

    class AssertingJax(FakeJax):
        def devices(self, backend=None):
            raise AssertionError

    machine(jax=AssertingJax(platforms_setting="cuda"))
    with pytest.raises(PlatformError) as raised:
        platforms.devices_for(None)
    assert str(raised.value).startswith("platform 'cuda': JAX's CUDA support is not installed; ")
    assert str(raised.value).endswith("; or set JAX_PLATFORMS=cpu (it is 'cuda') to use the CPU")


# ---------------------------------------------------------------------------------------------------
# restrict_to: what JAX is told to start.


def test_select_gpu_names_the_installed_runtime_so_jax_tries_no_other(machine):
    fake = machine(plugins={"xla_cuda13"})
    assert platforms.restrict_to("gpu") == "cuda"
    assert fake.updates == [("jax_platforms", "cuda")]
    assert platforms.restrict_to("gpu") == "cuda" and len(fake.updates) == 1  # again: nothing to change


def test_select_none_repairs_a_gpu_alias_in_jax_platforms(machine):
    """``JAX_PLATFORMS=gpu`` on an NVIDIA machine makes JAX 0.11 fail on 'rocm'; the runtime's name works."""
    fake = machine(plugins={"xla_cuda13"}, jax=FakeJax(platforms_setting="gpu,cpu"))
    assert platforms.restrict_to(None) is None
    assert fake.updates == [("jax_platforms", "cuda,cpu")]
    fake = machine(jax=FakeJax(platforms_setting=None))
    assert platforms.restrict_to(None) is None and fake.updates == []


def test_select_with_both_gpu_runtimes_and_no_clue_lets_jax_discover(machine):
    fake = machine(plugins={"xla_cuda13", "xla_rocm7"}, jax=FakeJax(platforms_setting="cpu"))
    assert platforms.restrict_to("gpu") == "gpu"
    assert fake.updates == [("jax_platforms", None)]


def test_select_after_jax_started_raises_unless_it_changes_nothing(machine):
    machine(plugins={"xla_cuda13"}, jax=FakeJax(default="gpu"), started=True)
    with pytest.raises(RuntimeError, match=r"came after JAX started its backends \(default: 'gpu'\)"):
        platforms.restrict_to("cpu")
    assert platforms.restrict_to("gpu") == "cuda"  # the GPU is JAX's default already: fine
    fake = machine(jax=FakeJax(default="cpu"), started=True)
    assert platforms.restrict_to("cpu") == "cpu" and fake.updates == []


def test_select_checks_the_platform_before_touching_jax(machine):
    fake = machine()
    with pytest.raises(PlatformError):
        platforms.restrict_to("tpu")
    assert fake.updates == []


# ---------------------------------------------------------------------------------------------------
# The real JAX of this machine.


def test_cpu_devices_are_always_there():
    devices = platforms.devices_for("cpu")
    assert devices and all(device.platform == "cpu" for device in devices)
    assert platforms.devices_for(None)


@pytest.mark.skipif(bool(platforms.installed_gpu_runtimes()), reason="a JAX GPU plugin is installed here")
def test_without_a_gpu_plugin_gpu_is_a_platform_error_naming_the_install_line():
    with pytest.raises(PlatformError, match=r"jax\[cuda1[23]\]"):
        platforms.devices_for("gpu")


def test_select_in_a_fresh_process_restricts_jax_and_knows_when_it_is_too_late():
    code = textwrap.dedent(
        """
        import jax, jax.numpy as jnp
        from jaxnn import platforms
        assert not platforms._backends_started()
        assert platforms.restrict_to("cpu") == "cpu" and jax.config.jax_platforms == "cpu"
        jnp.ones(2).block_until_ready()
        assert platforms._backends_started()  # JAX's internal query still answers (0.10-0.11)
        assert platforms.restrict_to("cpu") == "cpu"
        assert [d.platform for d in platforms.devices_for(None)] == ["cpu"] * len(jax.devices())
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "JAX_PLATFORM_NAME")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
