"""One root exception type for the library; every failure a user can cause is a subclass."""

from __future__ import annotations


class MRVError(Exception):
    """Root of every error raised on purpose by open-dmrv."""


class ConfigError(MRVError):
    """Settings or workspace are unusable."""


class ProjectSpecError(MRVError):
    """The project YAML is invalid. The message names the file and the field."""


class ArtifactError(MRVError):
    """Artifact store problem (missing blob, digest mismatch)."""


class ArtifactNotFound(ArtifactError):
    """No blob with this digest in the store."""


class IngestError(MRVError):
    """An input file cannot be read. The message names the file and, where known, the row."""


class ContractError(MRVError):
    """A data contract definition is invalid."""


class ContractBlocked(MRVError):
    """A `block`-severity contract rule failed: the run stops."""


class MethodologyError(MRVError):
    """Methodology not found, misused or fed inconsistent inputs."""


class ParameterError(MethodologyError):
    """A methodology parameter is missing, has the wrong unit, or is out of range."""


class ApplicabilityError(MethodologyError):
    """A methodology applicability condition is not met (the message cites the clause)."""


class LineageError(MRVError):
    """Lineage store problem."""


class SigningError(MRVError):
    """Signing or key handling failed (bad key, unsignable document). Verification failures are
    not raised: they come back as a ``VerificationResult`` with ``verified=False``."""


class KeyFileError(SigningError):
    """A key file is missing, malformed, unsafe (readable by others) or would be overwritten."""


class DIDKeyError(SigningError):
    """A ``did:key`` identifier, multikey or multibase string is malformed or unsupported."""


class PackageError(MRVError):
    """A verification package cannot be built, read or extended. The message names the file."""


class ReportError(MRVError):
    """A monitoring report cannot be built or rendered (run not finished, artifacts missing, a
    field missing or malformed): the message names what."""


class ReplayError(MRVError):
    """A verifier's replay cannot run or refused (version mismatch, package incomplete)."""


class RegistryError(MRVError):
    """Registry data layer problem (store unreachable or unmigrated, invalid record)."""


class AuthError(RegistryError):
    """An API token is missing, unknown, malformed or revoked. The message never echoes the token."""


class IllegalTransition(RegistryError):
    """An intake request cannot move from its current status to the requested one."""


class SerialAllocationError(RegistryError):
    """Unit serial numbers cannot be allocated (bad count or vintage, counter exhausted)."""


class AuditError(RegistryError):
    """The audit log cannot be appended to (the event is not JSON, the chain head is missing)."""


class GeometryError(MRVError):
    """A GeoJSON geometry cannot be read or compared (wrong type, malformed coordinates). The
    message names what is wrong."""


class RasterError(MRVError):
    """A raster cannot be used: unreadable or corrupt file, missing CRS, a grid (transform or
    shape) that differs from the one expected, or values of an unusable type. The message names
    the raster and the rule."""


class CRSMismatchError(RasterError):
    """Geometries and a raster (or two rasters) are in different coordinate reference systems.
    Nothing is reprojected silently: the message names both CRSs."""


class SceneError(RasterError):
    """A satellite scene or its STAC catalog cannot be used: an item whose asset is missing, an
    asset that is not a readable GeoTIFF, a scene without CRS or in a CRS the run refuses, plots
    that lie outside every scene. The message names the scene (STAC item id), the asset where one
    is involved, and the rule."""
