"""CDM ACM0002 version 22.0 (id ``CDM:ACM0002:22.0``), registered at import."""

from methodologies.cdm_acm0002.v22.calculator import ACM0002
from mrv.methodology.registry import register

METHODOLOGY = register(ACM0002())

__all__ = ["ACM0002", "METHODOLOGY"]
