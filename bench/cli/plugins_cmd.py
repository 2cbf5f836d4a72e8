"""``bench plugins``: list every registered part and the plugin that provides it."""

from __future__ import annotations

from rich.table import Table

from bench.api.kinds import KINDS
from bench.cli.app import app, console, err_console

KIND_LABELS = [kind.label for kind in KINDS.values()]


@app.command("plugins", help=f"List every registered {', '.join(KIND_LABELS[:-1])} and {KIND_LABELS[-1]}, "
                             "and the plugins that failed to load.")
def plugins_command() -> None:
    from bench.api.pluginhost import default_host

    host = default_host()
    table = Table(title="facehash-bench plugins")
    for column in ("kind", "name", "plugin", "version", "description"):
        table.add_column(column)
    for name, kind in KINDS.items():
        for entry in host.registries[name]:
            table.add_row(kind.label, entry.name, entry.plugin, entry.version, entry.description)
    console.print(table)
    for failure in host.failures:
        err_console.print(f"plugin '{failure.plugin}' failed to load: {failure.error}", markup=False)
