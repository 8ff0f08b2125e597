"""Installs that tests make without installing: this venv's site-packages as links, less
some distributions, and a way to see which subprocesses a vft command starts."""

from __future__ import annotations

import importlib.metadata as md
import sysconfig
from pathlib import Path

#: run vft with an audit hook that reports each subprocess it starts, one line on stderr:
#: `python [-S] -c SPAWNS ARGS...` is `vft ARGS...` with `SPAWN argv...` lines added
SPAWNS = (
    "import runpy, sys\n"
    "sys.addaudithook(lambda event, args: event == 'subprocess.Popen'"
    " and print('SPAWN', *args[1], file=sys.stderr))\n"
    "sys.argv = ['vft', *sys.argv[1:]]\n"
    "runpy.run_module('vft', run_name='__main__')\n"
)


def entries_of(distributions: tuple[str, ...]) -> set[str]:
    """The site-packages entries (modules, metadata folders) of these distributions."""
    names: set[str] = set()
    for name in distributions:
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        for file in dist.files or ():
            top = file.parts[0]
            if top != "..":
                names.add(top.removesuffix(".py"))
    return names


def site_without(distributions: tuple[str, ...], out: Path) -> Path:
    """`out` filled with links to this venv's site-packages entries, less `distributions`,
    the `.pth` files and vft's own install (modules and metadata both absent, as if never
    installed; nothing is copied)."""
    absent = entries_of(distributions)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.removesuffix(".py") in absent or entry.name in absent:
            continue
        if entry.suffix == ".pth" or entry.name.startswith(("__editable__", "vft")):
            continue
        (out / entry.name).symlink_to(entry)
    return out
