"""Options shared by several commands, defined once."""

from __future__ import annotations

import click

recipe_argument = click.argument("recipe", type=click.Path(dir_okay=False), metavar="RECIPE")
backend_option = click.option(
    "--backend", "-b", default="local", show_default=True, help="Where to run: see `vft backends`."
)
#: for commands on an existing run: the backend is the one its run.json records; -b, as
#: in `vft run -b modal`, is accepted and must agree with it
run_backend_option = click.option(
    "--backend",
    "-b",
    default=None,
    help="The backend RUN ran on (default: the one its run.json records).",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help='Override a recipe field; VALUE is TOML (10, true, ["a"]) or a bare string. Repeatable.',
)
