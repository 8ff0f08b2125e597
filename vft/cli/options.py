"""Options shared by several commands, defined once."""

from __future__ import annotations

import click

recipe_argument = click.argument("recipe", type=click.Path(dir_okay=False), metavar="RECIPE")
backend_option = click.option(
    "--backend", "-b", default="local", show_default=True, help="Where to run: see `vft backends`."
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help='Override a recipe field; VALUE is TOML (10, true, ["a"]) or a bare string. Repeatable.',
)
