"""Tests of the plugin registry (``zeroshot_core.plugins.manager``) and the hook specs."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from zeroshot_core.errors import PluginError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.plugins import hookspecs
from zeroshot_core.plugins import manager as plugins
from zeroshot_core.plugins.hookspecs import hookimpl
from zeroshot_core.segmenters.base import Segmenter

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
OWN = ("napari-zeroshot", metadata.version("napari-zeroshot"))


def hookspec_names() -> list[str]:
    """Every hook declared in :mod:`zeroshot_core.plugins.hookspecs`."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return sorted(n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, marker))


# ----------------------------------------------------------------- a plugin using every hook


class TinyGuidance(Guidance):
    """One static channel: the mask."""

    name = "test-guidance"
    static_channels = 1

    def static_condition(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.where(mask, 1.0, -1.0).astype(np.float32)[None]


class TinySegmenter(Segmenter):
    """Everything inside the mask is label 1."""

    name = "test-segmenter"

    def __init__(self, state=None) -> None:
        self.received_state = state

    def segment(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(mask, dtype=np.int16)

    def label_names(self) -> dict[int, str]:
        return {0: "background", 1: "object"}


class AllHooksPlugin:
    """Implements every hook spec; :func:`test_every_hookspec_is_exercised` keeps it so."""

    @hookimpl
    def zeroshot_register_guidance(self, register):
        register("test-guidance", TinyGuidance)

    @hookimpl
    def zeroshot_register_segmenters(self, register):
        register("test-segmenter", lambda state=None, **params: TinySegmenter(state=state, **params))


def test_every_hookspec_is_exercised():
    implemented = {n for n in hookspec_names() if hasattr(getattr(AllHooksPlugin, n, None), "zeroshot_impl")}
    assert implemented == set(hookspec_names()), "add the new hook to AllHooksPlugin and test it"


def test_all_hooks_plugin_registers_through_every_hook():
    regs = plugins.build_registries(extra_plugins=(AllHooksPlugin(),), load_entry_points=False)
    guidance = regs.guidance.create("test-guidance")
    image = np.zeros((8, 8), np.float32)
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    channels = guidance.static_condition(image, mask)
    assert channels.shape == (guidance.condition_channels, 8, 8)
    segmenter = regs.segmenters.create("test-segmenter", state={"k": 1})
    assert segmenter.received_state == {"k": 1}
    assert segmenter.segment(image, mask).sum() == 16
    assert {"test-guidance", "test-segmenter"} == {
        e.name for r in (regs.guidance, regs.segmenters) for e in r if e.name.startswith("test-")
    }


def test_every_hookspec_is_implemented_by_a_builtin():
    regs = plugins.build_registries(load_entry_points=False)
    for name in hookspec_names():
        owners = {regs.manager.get_name(impl.plugin) for impl in getattr(regs.manager.hook, name).get_hookimpls()}
        assert owners & set(plugins.BUILTIN_PLUGINS), f"no built-in implements {name}"


def test_every_hookspec_is_documented_with_its_signature():
    text = DOCS.read_text(encoding="utf-8")
    headings = re.findall(r"^#+\s+`?([^`\n]+?)`?\s*$", text, flags=re.MULTILINE)
    for name in hookspec_names():
        args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"{name}({args})" in headings, f"docs/plugins.md needs a heading `{name}({args})`"


# ------------------------------------------------------------------------- Registry


def test_registry_rejects_duplicate_names():
    registry = plugins.Registry("guidance")
    registry.register("alpha", TinyGuidance, package="first-package", version="1.0")
    with pytest.raises(PluginError, match=r"'alpha' is already registered by first-package; choose another name"):
        registry.register("alpha", TinyGuidance, package="second-package")
    assert registry.entry("alpha").package == "first-package"


def test_plugins_cannot_take_a_builtin_name():
    class Squatter:
        @hookimpl
        def zeroshot_register_segmenters(self, register):
            register("kmeans", TinySegmenter)

    with pytest.raises(PluginError, match="'kmeans' is already registered by napari-zeroshot"):
        plugins.build_registries(extra_plugins=(Squatter(),), load_entry_points=False)


@pytest.mark.parametrize("name, factory", [("", TinyGuidance), ("  ", TinyGuidance), (None, TinyGuidance),
                                           ("ok", "not callable")])
def test_registry_rejects_bad_names_and_factories(name, factory):
    with pytest.raises(PluginError):
        plugins.Registry("guidance").register(name, factory)


def test_unknown_name_lists_valid_names():
    registry = plugins.build_registries(load_entry_points=False).guidance
    for call in (registry.entry, registry.create):
        with pytest.raises(PluginError) as info:
            call("no-such-guidance")
        message = str(info.value)
        assert "unknown guidance 'no-such-guidance'" in message
        assert message.endswith("valid names: " + ", ".join(registry.names()))
    with pytest.raises(PluginError, match="valid names: none"):
        plugins.Registry("segmenter").entry("kmeans")


def test_create_turns_bad_parameters_into_plugin_errors():
    registry = plugins.build_registries(load_entry_points=False).segmenters
    with pytest.raises(PluginError, match="segmenter 'multiotsu'"):
        registry.create("multiotsu", no_such_parameter=1)


def test_registry_iterates_sorted_and_supports_in():
    registry = plugins.Registry("segmenter")
    for name in ("zeta", "alpha", "mid"):
        registry.register(name, TinySegmenter)
    assert [e.name for e in registry] == ["alpha", "mid", "zeta"] == registry.names()
    assert "mid" in registry and "other" not in registry


def test_process_wide_registries_are_cached_until_reset():
    plugins.reset_registries()
    first = plugins.registries()
    assert plugins.registries() is first
    assert plugins.guidance_registry() is first.guidance
    assert plugins.segmenter_registry() is first.segmenters
    plugins.reset_registries()
    assert plugins.registries() is not first


# ---------------------------------------------------------------- third-party discovery


@pytest.fixture
def fake_dist(tmp_path, monkeypatch) -> Callable[..., Path]:
    """Install a fake distribution (dist-info + modules) on ``sys.path``.

    ``fake_dist(name, version, entry_points={ep_name: module}, modules={module: source})``.
    """
    created: list[str] = []

    def make(name: str, version: str, entry_points: dict[str, str], modules: dict[str, str] | None = None) -> Path:
        root = tmp_path / f"site-{name}"
        info = root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[{hookspecs.PROJECT_NAME}]\n{lines}")
        for module, source in (modules or {}).items():
            (root / f"{module}.py").write_text(textwrap.dedent(source))
            created.append(module)
        monkeypatch.syspath_prepend(str(root))
        return root

    yield make
    for module in created:
        sys.modules.pop(module, None)
    plugins.reset_registries()


PLUGIN_SOURCE = """
    import numpy as np
    from zeroshot_core.plugins.hookspecs import hookimpl
    from zeroshot_core.guidance.base import Guidance

    class FakeGuidance(Guidance):
        name = "{guidance}"

    @hookimpl
    def zeroshot_register_guidance(register):
        register("{guidance}", FakeGuidance)

    @hookimpl
    def zeroshot_register_segmenters(register):
        register("{segmenter}", lambda state=None, **params: None)
"""


def install_fake_plugin(fake_dist, guidance: str = "fake-guidance", segmenter: str = "fake-segmenter",
                        dist: str = "fake-zeroshot-plugin", module: str = "fake_zeroshot_plugin") -> None:
    fake_dist(dist, "1.2.3", {module: module},
              {module: PLUGIN_SOURCE.format(guidance=guidance, segmenter=segmenter)})


def test_entry_point_plugins_are_loaded_with_package_and_version(fake_dist, monkeypatch):
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    install_fake_plugin(fake_dist)
    regs = plugins.build_registries()
    for registry, name in ((regs.guidance, "fake-guidance"), (regs.segmenters, "fake-segmenter")):
        entry = registry.entry(name)
        assert (entry.package, entry.version) == ("fake-zeroshot-plugin", "1.2.3")
    assert (regs.segmenters.entry("kmeans").package, regs.segmenters.entry("kmeans").version) == OWN


@pytest.mark.parametrize("value, disabled", [("1", True), ("yes", True), ("true", True), ("0", False), ("", False)])
def test_env_var_disables_entry_point_loading(fake_dist, monkeypatch, value, disabled):
    install_fake_plugin(fake_dist)
    monkeypatch.setenv(plugins.DISABLE_ENV, value)
    assert plugins.plugins_disabled() is disabled
    plugins.reset_registries()
    assert ("fake-guidance" in plugins.guidance_registry()) is not disabled
    assert ("fake-segmenter" in plugins.segmenter_registry()) is not disabled
    # built-ins never depend on the switch
    assert {"kmeans", "multiotsu"} <= set(plugins.segmenter_registry().names())
    # an explicit argument wins over the environment
    assert "fake-guidance" in plugins.build_registries(load_entry_points=True).guidance
    assert "fake-guidance" not in plugins.build_registries(load_entry_points=False).guidance


def test_two_third_party_plugins_cannot_share_a_name(fake_dist, monkeypatch):
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    install_fake_plugin(fake_dist, dist="fake-one", module="fake_one_plugin", segmenter="seg-one")
    install_fake_plugin(fake_dist, dist="fake-two", module="fake_two_plugin", segmenter="seg-two")
    with pytest.warns(plugins.PluginWarning) as caught:
        regs = plugins.build_registries()
    (failure,) = regs.failures
    winner = regs.guidance.entry("fake-guidance").package
    assert {winner, failure.package} == {"fake-one", "fake-two"}
    assert f"'fake-guidance' is already registered by {winner}" in failure.reason
    # the loser is skipped as a whole: its other, free name is not registered either
    loser_segmenter = "seg-two" if failure.package == "fake-two" else "seg-one"
    assert loser_segmenter not in regs.segmenters
    assert ({"seg-one", "seg-two"} - {loser_segmenter}) <= set(regs.segmenters.names())
    assert [str(w.message) for w in caught] == [failure.message]


def skipped(regs: plugins.Registries, package: str) -> plugins.PluginFailure:
    (failure,) = [f for f in regs.failures if f.package == package]
    assert f"pip uninstall {package}" in failure.message and "ZEROSHOT_DISABLE_PLUGINS=1" in failure.message
    return failure


def test_a_broken_entry_point_is_skipped_and_named(fake_dist, monkeypatch):
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    fake_dist("broken-plugin", "0.1", {"broken": "module_that_does_not_exist_zs"})
    install_fake_plugin(fake_dist)  # a good plugin installed beside it keeps working
    fake_dist("exiting-plugin", "0.2", {"exiting": "exiting_zs_plugin"},
              {"exiting_zs_plugin": "raise SystemExit('this plugin exits on import')"})
    with pytest.warns(plugins.PluginWarning) as caught:
        regs = plugins.build_registries()
    assert sorted(str(w.message) for w in caught) == sorted(f.message for f in regs.failures)
    assert any(str(w.message).startswith("plugin broken-plugin 0.1 (entry point 'broken') skipped: import failed "
                                         "(ModuleNotFoundError") for w in caught)
    assert "module_that_does_not_exist_zs" in skipped(regs, "broken-plugin").reason
    assert "SystemExit" in skipped(regs, "exiting-plugin").reason
    assert {"contour", "lmi", "none", "fake-guidance"} <= set(regs.guidance.names())
    assert regs.guidance.entry("fake-guidance").package == "fake-zeroshot-plugin"
    monkeypatch.setenv(plugins.DISABLE_ENV, "1")
    regs = plugins.build_registries()
    assert "kmeans" in regs.segmenters and regs.failures == ()


def test_a_failing_third_party_hook_is_skipped_and_named(fake_dist, monkeypatch):
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    source = """
        from zeroshot_core.plugins.hookspecs import hookimpl

        @hookimpl
        def zeroshot_register_guidance(register):
            register("crash-guidance", dict)

        @hookimpl
        def zeroshot_register_segmenters(register):
            raise RuntimeError("model file missing")
    """
    fake_dist("crashing-plugin", "2.0", {"crashing-plugin": "crashing_zs_plugin"}, {"crashing_zs_plugin": source})
    with pytest.warns(plugins.PluginWarning, match=r"crashing-plugin 2\.0 .* skipped: registration failed "
                                                   r"\(RuntimeError\('model file missing'\)\)"):
        regs = plugins.build_registries()
    skipped(regs, "crashing-plugin")
    assert "crash-guidance" not in regs.guidance  # all or nothing
    assert not regs.manager.is_registered(sys.modules["crashing_zs_plugin"])
    assert {"kmeans", "multiotsu"} <= set(regs.segmenters.names())


@pytest.mark.parametrize("kind, name", [("guidance", "contour"), ("segmenters", "kmeans"), ("segmenters", "")])
def test_a_plugin_taking_a_builtin_or_invalid_name_is_skipped(fake_dist, monkeypatch, kind, name):
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    hook = "zeroshot_register_guidance" if kind == "guidance" else "zeroshot_register_segmenters"
    source = f"""
        from zeroshot_core.plugins.hookspecs import hookimpl

        @hookimpl
        def {hook}(register):
            register({name!r}, lambda **params: None)
    """
    fake_dist("squatting-plugin", "1.0", {"squat": "squatting_zs_plugin"}, {"squatting_zs_plugin": source})
    with pytest.warns(plugins.PluginWarning, match="squatting-plugin"):
        regs = plugins.build_registries()
    reason = skipped(regs, "squatting-plugin").reason
    assert ("already registered by napari-zeroshot" if name else "must be a non-empty string") in reason
    registry = getattr(regs, kind)
    if name:
        assert registry.entry(name).package == OWN[0]
    assert {"contour", "lmi", "none"} <= set(regs.guidance.names())


def test_plugins_command_lists_the_skipped_plugins(fake_dist, monkeypatch, capsys):
    from zeroshot_core.cli import main

    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    fake_dist("broken-plugin", "0.1", {"broken": "module_that_does_not_exist_zs"})
    install_fake_plugin(fake_dist)
    plugins.reset_registries()
    assert main(["plugins", "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    (failed,) = [r for r in rows if r["kind"] == "failed"]
    assert (failed["name"], failed["package"], failed["version"]) == ("broken", "broken-plugin", "0.1")
    assert "module_that_does_not_exist_zs" in failed["error"]
    assert {("guidance", "fake-guidance"), ("segmenter", "kmeans")} <= {(r["kind"], r["name"]) for r in rows}
    # the warning is one line on stderr, once
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zeroshot: warning: plugin broken-plugin 0.1")
    assert main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert "failed: plugin broken-plugin 0.1" in captured.out and "pip uninstall broken-plugin" in captured.out
    assert captured.err == ""  # the registries are built once per process: no second warning


# ---------------------------------------------------------------- built-ins are plugins


def same_factory(a: Callable, b: Callable) -> bool:
    """Identical, or the same code (a hook may build a fresh lambda on every call)."""
    key = lambda f: (getattr(f, "__module__", None), getattr(f, "__qualname__", None))  # noqa: E731
    return a is b or key(a) == key(b)


def collect_registrations(module_names) -> dict[str, dict[str, Callable]]:
    """Call the hook implementations of modules directly, as a third party would be called."""
    found: dict[str, dict[str, Callable]] = {n: {} for n in hookspec_names()}
    for module_name in module_names:
        module = importlib.import_module(module_name)
        for hook in hookspec_names():
            impl = getattr(module, hook, None)
            if impl is not None:
                assert hasattr(impl, "zeroshot_impl"), f"{module_name}.{hook} lacks @hookimpl"
                impl(lambda name, factory, _hook=hook: found[_hook].__setitem__(name, factory))
    return found


def test_builtins_register_only_through_their_hooks():
    regs = plugins.build_registries(load_entry_points=False)
    for module_name in plugins.BUILTIN_PLUGINS:
        assert regs.manager.get_plugin(module_name) is importlib.import_module(module_name)
    found = collect_registrations(plugins.BUILTIN_PLUGINS)
    for registry, hook in ((regs.guidance, "zeroshot_register_guidance"),
                           (regs.segmenters, "zeroshot_register_segmenters")):
        assert registry.names() == sorted(found[hook])
        assert all(same_factory(e.factory, found[hook][e.name]) for e in registry)
    assert {(e.package, e.version) for r in (regs.guidance, regs.segmenters) for e in r} == {OWN}


def test_builtins_work_unchanged_as_entry_point_plugins(fake_dist, monkeypatch):
    """Loading the built-in modules as a third-party distribution gives the same registries."""
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    normal = plugins.build_registries(load_entry_points=False)
    fake_dist("builtins-as-plugins", "9.9", {m.rsplit(".", 1)[1]: m for m in plugins.BUILTIN_PLUGINS})
    monkeypatch.setattr(plugins, "BUILTIN_PLUGINS", ())
    moved = plugins.build_registries(load_entry_points=True)
    for before, after in ((normal.guidance, moved.guidance), (normal.segmenters, moved.segmenters)):
        mine = {e.name: e for e in after if e.package == "builtins-as-plugins"}
        assert set(mine) == set(before.names())
        for entry in before:
            assert same_factory(mine[entry.name].factory, entry.factory)
            assert mine[entry.name].version == "9.9"
