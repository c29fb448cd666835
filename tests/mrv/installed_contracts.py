"""Test helper: an installation whose data contracts differ from the ones a package recorded.

The replay compares the contract versions a run recorded with the *installed* ones (the
``data_contracts`` package). To install other versions without touching the checkout, every
shipped contract YAML is copied into a directory, the named contracts get a new ``version:``, and
the contract loaders the replay uses (``mrv.contracts.load_contract``, ``mrv.raster.contracts.
load_raster_contract`` and the name ``mrv.replay`` imported) read from that directory. The files
are real and parsed by the real loaders; only where they are looked up changes.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest


def install_contracts(monkeypatch: pytest.MonkeyPatch, directory: Path, versions: dict[str, str]) -> Path:
    import data_contracts
    import mrv.contracts
    import mrv.raster.contracts
    import mrv.replay

    shipped = Path(data_contracts.__file__).parent
    directory.mkdir(parents=True, exist_ok=True)
    found = set()
    for f in sorted(shipped.glob("*.yaml")):
        text = f.read_text(encoding="utf-8")
        if f.stem in versions:
            text, n = re.subn(r"(?m)^version: *\S+ *$", f"version: {versions[f.stem]}", text, count=1)
            assert n == 1, f"{f}: no top-level version line"
            found.add(f.stem)
        (directory / f.name).write_text(text, encoding="utf-8")
    assert found == set(versions), f"no shipped contract named {sorted(set(versions) - found)}"
    tabular = functools.partial(mrv.contracts.load_contract, directory=directory)
    monkeypatch.setattr(mrv.contracts, "load_contract", tabular)
    monkeypatch.setattr(mrv.replay, "load_contract", tabular)
    monkeypatch.setattr(mrv.raster.contracts, "load_raster_contract", functools.partial(mrv.raster.contracts.load_raster_contract, directory=directory))
    return directory
