"""The `vft` command. Subcommands live in their own modules and are imported on use,
so `vft --help` never pays for what it does not run."""

from __future__ import annotations

import importlib
import io
import sys
from typing import Any

import click

from vft import __version__

# name -> (module:attribute, one-line help shown by `vft --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("vft.cli.plan_cmd:plan_command", "Show what would run, where, and at what cost."),
    "run": ("vft.cli.run_cmd:run_command", "Run a recipe on a backend."),
    "runs": ("vft.cli.runs_cmd:runs_command", "List runs and their status."),
    "status": ("vft.cli.status_cmd:status_command", "Show the status of a run."),
    "plot": ("vft.cli.plot_cmd:plot_command", "Plot runs' reward, loss and KL curves."),
    "sweep": ("vft.cli.sweep_cmd:sweep_command", "Run a grid of recipe variants."),
    "logs": ("vft.cli.run_cmd:logs_command", "Print (or follow) a run's logs."),
    "stop": ("vft.cli.run_cmd:stop_command", "Stop a running run."),
    "outputs": ("vft.cli.outputs_cmd:outputs_group", "List or download a run's outputs."),
    "backends": (
        "vft.cli.backends_cmd:backends_command",
        "List installed backends and what they can do.",
    ),
    "envs": ("vft.cli.envs_cmd:envs_command", "List installed Verifiers environments."),
    "doctor": ("vft.cli.doctor_cmd:doctor_command", "Check the CPU training and inference stacks."),
    "init": ("vft.cli.plan_cmd:init_command", "Write a commented starter recipe."),
    "schema": ("vft.cli.plan_cmd:schema_command", "Print the recipe's JSON Schema."),
}


#: click >= 8.2 raises this for a group run without a command; 8.1 prints the help itself
NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            import difflib

            close = difflib.get_close_matches(name, list(COMMANDS), n=1)
            ctx.fail(
                f"No such command {name!r}." + (f" Did you mean {close[0]!r}?" if close else "")
            )
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vft")
def cli() -> None:
    """vft: one declarative recipe in, a GRPO training run out.

    \b
      vft plan gsm8k --backend modal   what would run, where, at what cost
      vft run                          a real GRPO run on the CPU (smoke recipe)
      vft logs smoke -f                follow a run's logs

    RECIPE is a TOML file; the name of one of vft's examples (gsm8k, smoke, wordle-1.7b,
    ...) alone is vft's copy of it, run from the current folder.
    """


def main(argv: list[str] | None = None) -> Any:
    """Entry point: user errors become one line on stderr and exit code 2.

    Every error text goes through the redactor: a message may quote a value the user
    typed (`--set`, a run name), and that value may be a secret."""
    from vft.core.errors import UserError

    try:
        return cli.main(args=argv, prog_name="vft", standalone_mode=False)
    except UserError as exc:
        _error(f"vft: error: {exc.line()}")
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("vft: aborted", err=True)
        sys.exit(130)
    except NO_ARGS_IS_HELP as exc:  # `vft`, `vft outputs`: the help itself, not an error line
        click.echo(exc.format_message(), err=True)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:  # one line, as every other mistake: what, and where help is
        ctx = exc.ctx
        where = f"{ctx.command_path} --help" if ctx is not None else "vft --help"
        _error(f"vft: error: {exc.format_message()} (see `{where}`)")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        shown = io.StringIO()
        exc.show(file=shown)
        _error(shown.getvalue().rstrip("\n"))
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception:  # a bug: the traceback is for us, but secrets stay hidden in it too
        import traceback

        _error(traceback.format_exc().rstrip("\n"))
        sys.exit(1)


def _error(text: str) -> None:
    from vft.core.secrets import redact

    click.echo(redact(text), err=True)
