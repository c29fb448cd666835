"""GS MECD version 2.0 (id ``GS:MECD:2.0``), electric cooking devices, registered at import."""

from methodologies.gs_mecd.v2.calculator import MECD
from mrv.methodology.registry import register

METHODOLOGY = register(MECD())

__all__ = ["MECD", "METHODOLOGY"]
