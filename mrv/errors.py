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
    """A report cannot be built (run not finished, artifacts missing)."""


class ReplayError(MRVError):
    """A verifier's replay cannot run or refused (version mismatch, package incomplete)."""


class ReportError(MRVError):
    """A monitoring report cannot be built or rendered (a field is missing or malformed: the
    message names it)."""
