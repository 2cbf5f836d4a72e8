"""``bench plugins``: list every registered part and the plugin that provides it."""

from __future__ import annotations

from rich.table import Table

from bench.cli.app import app, console, err_console


@app.command("plugins")
def plugins_command() -> None:
    """List registered backbones, heads, losses, methods, datasets, executors, metrics and normalisers."""
    from bench.api.pluginhost import default_host

    host = default_host()
    table = Table(title="facehash-bench plugins")
    for column in ("kind", "name", "plugin", "version", "description"):
        table.add_column(column)
    for registry in host.registries.values():
        for entry in registry:
            table.add_row(registry.kind, entry.name, entry.plugin, entry.version, entry.description)
    console.print(table)
    for failure in host.failures:
        err_console.print(f"plugin '{failure.plugin}' failed to load: {failure.error}", markup=False)
