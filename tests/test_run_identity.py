"""Run identity: a finished run is reused only when the code that trained it is unchanged
(editing an installed plugin's loss trains again); runs that differ only by an overridden or
swept setting get distinguishable names."""

from __future__ import annotations

import sys
from dataclasses import replace

import sweepkit
from mlflow.tracking import MlflowClient

from bench.api.pluginhost import default_host
from bench.config.protocol import ProtocolConfig
from bench.config.settings import LossEdit
from bench.running.planning import plan_runs
from bench.running.request import PartChoice, RunRequest
from bench.tracking import tags as T

from conftest import ROOT, install_plugin

#: the README's plugin plus a loss part of its own (the source this test edits)
LOSS_PLUGIN = (ROOT / "examples" / "minimal_plugin.py").read_text() + '''

from bench.api.interfaces import LossPart


class ScaledL2(LossPart):
    """Mean squared relaxed code, scaled."""

    def __init__(self, ctx, output_dims):
        super().__init__()

    def forward(self, outputs, context):
        return 0.5 * outputs["u"].pow(2).mean()


@hookimpl
def register_losses(register):
    register("scaled-l2", ScaledL2)
'''
RUN = ("run", "--method", "tiny-hash", "--bits", "8", "--epochs", "1", "--loss", "+scaled-l2:0.1")


def children(uri: str) -> list:
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [r for r in runs if T.PARENT_RUN in r.data.tags]


def forget_plugin() -> None:
    """What a new ``bench`` process would do: import the plugin again, from its edited source."""
    sys.modules.pop("minimal_plugin", None)
    default_host.cache_clear()


def test_editing_an_installed_plugins_loss_trains_the_same_run_again(plugin_site, cli, store):
    install_plugin(plugin_site, "minimal-plugin", "minimal_plugin", LOSS_PLUGIN)
    code, out, err = cli(*RUN, "--tracking-uri", store)
    assert code == 0 and "ran 1 (1 finished, 0 failed), skipped 0" in out, err
    forget_plugin()
    code, out, err = cli(*RUN, "--tracking-uri", store)
    assert code == 0 and "ran 0 (0 finished, 0 failed), skipped 1" in out, err  # unchanged code: reused

    source = plugin_site / "minimal_plugin.py"
    source.write_text(source.read_text().replace("return 0.5 * outputs", "return 0.25 * outputs"))
    forget_plugin()
    code, out, err = cli(*RUN, "--tracking-uri", store)
    assert code == 0 and "ran 1 (1 finished, 0 failed), skipped 0" in out, err  # edited code: trained again

    first, second = sorted(children(store), key=lambda r: r.info.start_time)
    assert first.info.run_name == second.info.run_name == "tiny-hash[loss=+scaled-l2:0.1]-8b-s0"
    assert first.data.tags[T.CONFIG_HASH] == second.data.tags[T.CONFIG_HASH]  # the same configuration
    assert first.data.tags[T.CODE_FINGERPRINT] != second.data.tags[T.CODE_FINGERPRINT]
    assert {first.info.status, second.info.status} == {"FINISHED"}


def test_the_code_fingerprint_covers_the_plugin_version_and_only_the_runs_parts(plugin_site):
    install_plugin(plugin_site, "minimal-plugin", "minimal_plugin", LOSS_PLUGIN)

    def fingerprints() -> tuple[str, str, str]:
        forget_plugin()
        host = default_host()
        plan = RunRequest(methods=["tiny-hash"], bits=[8], seeds=[0], protocol=ProtocolConfig())
        [tiny] = plan_runs(host, plan)
        [center] = plan_runs(host, replace(plan, parts=PartChoice(loss=[LossEdit("+", "center")])))  # one more module's source
        [lsh] = plan_runs(host, replace(plan, methods=["lsh"]))
        return tiny.code_fingerprint, center.code_fingerprint, lsh.code_fingerprint

    before = fingerprints()
    assert len(set(before)) == 3 and fingerprints() == before
    metadata = next(plugin_site.glob("*.dist-info")) / "METADATA"
    metadata.write_text(metadata.read_text().replace("Version: 0.1", "Version: 0.2"))
    after = fingerprints()
    assert after[0] != before[0] and after[1] != before[1]  # the plugin's runs: a new version
    assert after[2] == before[2]  # lsh uses nothing of the plugin


def test_the_results_table_tells_runs_apart_by_their_overrides(cli, store):
    for iterations in ("3", "5"):
        code, out, err = cli("run", "--method", "pca-itq", "--bits", "8", "--set", f"pca-itq.iterations={iterations}",
                             "--tracking-uri", store)
        assert code == 0, err
        assert out.count(f"pca-itq[iterations={iterations}]") == 3  # its two progress lines and its table row


def test_overridden_settings_name_the_run_and_defaults_keep_their_names():
    host = default_host()

    def name(method: str, **kw) -> str:
        [run] = plan_runs(host, RunRequest(methods=[method], bits=[12], seeds=[0], protocol=ProtocolConfig(),
                                           parts=PartChoice(**kw)))
        return run.spec.name

    assert name("dsh") == "dsh-12b-s0" and name("pca-itq") == "pca-itq-12b-s0"
    assert name("dsh", head="block") == "dsh[head=block]-12b-s0"
    assert name("pca-itq", sets=[("pca-itq.iterations", 5)]) == "pca-itq[iterations=5]-12b-s0"
    assert name("pca-itq", sets=[("dsh.optimizer.lr", 0.1)]) == "pca-itq-12b-s0"  # aimed at another method


def test_a_sweep_over_two_values_of_one_setting_yields_two_named_runs(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    outcome = sweepkit.run_sweep(uri, tmp_path / "out", methods=["pca-itq"], bits=[8],
                                 overrides={"pca-itq.iterations": [3, 5]})
    assert outcome.summary() == "ran 2 (2 finished, 0 failed), skipped 0"
    runs = {r.info.run_name: r for r in children(uri)}
    assert sorted(runs) == ["pca-itq[iterations=3]-8b-s0", "pca-itq[iterations=5]-8b-s0"]
    assert {r.data.params["method.iterations"] for r in runs.values()} == {"3", "5"}
    assert all((tmp_path / "out" / r.spec.folder_name / "codes.npz").exists() for r in outcome.results)
