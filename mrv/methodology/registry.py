"""Registry of methodologies by id (``<program>:<code>:<version>``)."""

from __future__ import annotations

import importlib

from mrv.errors import MethodologyError
from mrv.methodology.base import Methodology

# Modules that define methodologies. Adding one = one line here (see docs/methodology-guide.md).
_MODULES: tuple[str, ...] = (
    "methodologies.cdm_acm0002.v22",
    "methodologies.cdm_acm0001.v19",
    "methodologies.gs_mecd.v2",
    "methodologies.vcs_vm0047.v1",
)

_registry: dict[str, Methodology] = {}


def register(m: Methodology) -> Methodology:
    if m.id in _registry and type(_registry[m.id]) is not type(m):
        raise MethodologyError(f"two methodologies claim the id {m.id}")
    _registry[m.id] = m
    return m


def _load() -> None:
    for mod in _MODULES:
        importlib.import_module(mod)


def get(methodology_id: str) -> Methodology:
    _load()
    try:
        return _registry[methodology_id]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise MethodologyError(f"unknown methodology {methodology_id!r}; known: {known}") from None


def all_methodologies() -> list[Methodology]:
    _load()
    return [_registry[k] for k in sorted(_registry)]
