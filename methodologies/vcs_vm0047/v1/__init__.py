"""VCS VM0047 version 1.0 (id ``VCS:VM0047:1.0``), area-based approach, registered at import."""

from methodologies.vcs_vm0047.v1.calculator import VM0047
from mrv.methodology.registry import register

METHODOLOGY = register(VM0047())

__all__ = ["METHODOLOGY", "VM0047"]
