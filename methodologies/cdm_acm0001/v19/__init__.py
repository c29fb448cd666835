"""CDM ACM0001 version 19.0 (id ``CDM:ACM0001:19.0``), registered at import."""

from methodologies.cdm_acm0001.v19.calculator import ACM0001
from mrv.methodology.registry import register

METHODOLOGY = register(ACM0001())

__all__ = ["ACM0001", "METHODOLOGY"]
