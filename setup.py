"""Maps the repository's top-level folders under the `ingot` namespace.

The package list is computed, not written by hand, so a new subpackage can
never be left out of the wheel (tests/test_packaging.py checks it).
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
FOLDERS = ("modelfile", "registry", "daemon", "cli", "proto")

package_dir = {f"ingot.{folder}": folder for folder in FOLDERS}
packages = sorted(
    "ingot." + ".".join(init.parent.relative_to(ROOT).parts)
    for folder in FOLDERS
    for init in (ROOT / folder).rglob("__init__.py")
)

setup(package_dir=package_dir, packages=packages)
