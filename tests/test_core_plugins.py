"""Plugin discovery through entry points: third-party plugins, broken ones, autoload off."""

import subprocess
import sys
from pathlib import Path

from conftest import ROOT, install_plugin

BROKEN = "raise ImportError('missing dependency frobnicate')\n"
README_EXAMPLE = (ROOT / "examples" / "minimal_plugin.py").read_text()


def test_third_party_plugin_is_discovered_and_its_method_runs(plugin_site, cli, store):
    install_plugin(plugin_site, "minimal-plugin", "minimal_plugin", README_EXAMPLE)
    code, out, err = cli("plugins")
    assert code == 0, err
    assert "tiny-hash" in out and "pixel-mlp" in out and "minimal-plugin 0.1" in out
    code, out, err = cli("run", "--method", "tiny-hash", "--bits", "16", "--epochs", "2",
                         "--tracking-uri", store)
    assert code == 0, err
    assert "tiny-hash" in out and "FINISHED" in out


def test_broken_plugin_is_reported_and_the_rest_still_run(plugin_site, cli, store):
    install_plugin(plugin_site, "broken-plugin", "broken_plugin", BROKEN)
    code, out, err = cli("plugins")
    assert code == 0
    assert "plugin 'broken_plugin' failed to load: ImportError: missing dependency frobnicate" in " ".join(err.split())
    assert "lsh" in out and "orl" in out
    code, out, err = cli("run", "--method", "lsh", "--bits", "8", "--tracking-uri", store)
    assert code == 0 and "FINISHED" in out


def test_autoload_can_be_disabled_for_third_party_plugins(plugin_site, cli, monkeypatch):
    install_plugin(plugin_site, "minimal-plugin", "minimal_plugin", README_EXAMPLE)
    monkeypatch.setenv("FACEHASH_BENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    code, out, _ = cli("plugins")
    assert code == 0 and "tiny-hash" not in out and "lsh" in out


def test_misspelled_hook_is_reported_by_check_pending(fresh_host):
    import types

    from bench import hookimpl
    from bench.api.pluginhost import load_plugins

    module = types.ModuleType("typo")

    @hookimpl
    def register_method(register):  # the hook is register_methods
        register("never", object())

    module.register_method = register_method
    host = load_plugins(extra_plugins={"typo": module})
    assert [f.plugin for f in host.failures] == ["typo"]
    assert "register_method" in host.failures[0].error and "never" not in host.methods.names()


def test_readme_example_runs_from_a_fresh_process(plugin_site, tmp_path):
    """The README's plugin, installed as a distribution, used by the real console script."""
    install_plugin(plugin_site, "minimal-plugin", "minimal_plugin", README_EXAMPLE)
    bench = Path(sys.executable).parent / "bench"
    result = subprocess.run(
        [str(bench), "run", "--method", "tiny-hash", "--bits", "8", "--epochs", "1",
         "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "tiny-hash" in result.stdout and "FINISHED" in result.stdout


def test_readme_shows_the_example_plugin_verbatim():
    readme = (ROOT / "README.md").read_text()
    assert README_EXAMPLE in readme
