"""The Modal Image for an ImageSpec: dependency layers first, the project's code last.

Layer order is the whole point: Modal caches each build step by its definition, so the
steps that change rarely (Python, apt, pinned pip requirements) come first and the code
comes last as files added when a container starts (`copy=False`). Editing vft/ or an
example changes no build step; changing a pin in pyproject.toml rebuilds from that step.
Only a recipe's `environment.install` packages are copied into the image, since pip must
see them to install their dependencies; editing one rebuilds that small step alone.

The definition does not depend on how vft was installed here: the requirements are one
canonical text (names in PEP 503 form, sorted, specifiers sorted: what pyproject.toml and
a wheel's metadata both become), and vft's code always arrives in the wheel's layout
(vft/ with vft.configs, vft.recipes and the built-in environments nested in it, each at
the same container path; `spec.package_code`), so `import vft.configs` works in the
container either way. The deliberate difference: a checkout (editable install) ships its
working files, so an edit to vft reaches the run; an installed vft ships its installed
files. `vft plan --backend modal` names which. No path of this machine enters a build
step: Modal keys each layer by its commands and by the container paths and contents of
the files it adds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vft.backends.modal.spec import IGNORE, PACKAGE_LAYOUT, REMOTE_PACKAGE, UV_VERSION, ImageSpec

# `vft` on the PATH without installing the package (the code is added at start)
VFT_SHIM = "printf '#!/bin/sh\\nexec python -m vft \"$@\"\\n' > /usr/local/bin/vft && chmod +x /usr/local/bin/vft"


def build_image(spec: ImageSpec) -> Any:
    """The real `modal.Image` (lazy: nothing is sent to Modal until an app runs)."""
    import modal

    image = modal.Image.debian_slim(python_version=spec.python_version)
    image = image.apt_install(*spec.apt)
    image = image.uv_pip_install(*spec.requirements, uv_version=UV_VERSION)
    if spec.pip:
        image = image.uv_pip_install(*spec.pip, uv_version=UV_VERSION)
    image = image.run_commands(VFT_SHIM).env(dict(sorted(spec.env.items())))
    for _, local, remote in spec.installs:
        image = image.add_local_dir(local, remote, copy=True, ignore=list(IGNORE))
    if spec.installs:
        image = image.uv_pip_install(
            *(remote for _, _, remote in spec.installs), uv_version=UV_VERSION
        )
    image = image.workdir(spec.workdir)
    for local, remote in spec.code:
        if Path(local).is_dir():
            image = image.add_local_dir(local, remote, copy=False, ignore=code_ignore(remote))
        else:
            image = image.add_local_file(local, remote, copy=False)
    return image


def code_ignore(remote: str) -> list[str]:
    """What a code folder leaves out: caches, and in vft/ itself the nested packages, each
    added as its own folder (an installed vft holds them, a checkout does not)."""
    return [*IGNORE, *(PACKAGE_LAYOUT if remote == REMOTE_PACKAGE else ())]
