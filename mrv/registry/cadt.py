"""The Climate Action Data Trust (CAD Trust, CADT) v1 data model as pydantic models.

Field names are CADT's own (camelCase) so a record can be posted to a CADT node or read from one
without renaming. Checked against the public CADT source (Chia-Network/cadt, Joi schemas that a
node uses to accept or reject a payload):

- ``src/validations/projects.validations.js`` @ 336c8b6fd3e292a08d4535d3f5567ebbfeccf0a0
- ``src/validations/units.validations.js`` @ afe891f248f493e8484af5aa223f97d763a8bbd3
- ``src/validations/issuances.validation.js`` @ dc3e7ee264ea817a0d2780a172c59d35f49b715f
- ``src/validations/locations.validations.js``, ``co-benefits.validations.js`` @ 4f2337fa3f1feb3d903bbba2ba8a60f341c6c56a
- ``src/validations/estimations.validations.js`` @ 896a26d1db3cfbf3f90ec51d1485e8f11c487461
- ``src/validations/labels.validations.js`` (the later stored version that requires ``labelType``;
  the version @ e7cd68a9d536b4ab27943a46f995e8ac781bfcbc predates it)
- picklist values: ``docs/cadt_rpc_api.md`` @ c1d559739d638e7a3804b9e219d445342ab0ae18, the
  ``GET /v1/governance/meta/pickList`` example (``coveredByNDC``, ``projectStatusValues``,
  ``unitMetric``, ``unitType``, ``unitStatus``, both corresponding-adjustment lists, ``labelType``).

Deliberate differences from a CADT node, all stricter:

- unknown keys are rejected (a node answers 400 "Data Validation error");
- datetimes must carry a time and a UTC offset and are written back as ISO-8601 with ``Z``;
- the country picklist here is the UN member/observer state names plus CADT's "Not Specified"
  (the node's list comes from its governance body and is abbreviated in the docs; extend
  :data:`COUNTRIES` if a governance list adds names);
- a unit must carry its nested ``issuance`` with its ``id``: that is the only link from a unit to
  its project, and we never publish an orphan unit.

Not modelled (not needed for issuance): ``relatedProjects``, ``projectRatings``, unit
``label_unit`` join records, marketplace tokenization fields beyond the v1 unit columns.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

# --------------------------------------------------------------------------- picklists


class CoveredByNDC(enum.StrEnum):
    INSIDE_NDC = "Inside NDC"
    OUTSIDE_NDC = "Outside NDC"
    UNKNOWN = "Unknown"


class ProjectStatus(enum.StrEnum):
    LISTED = "Listed"
    VALIDATED = "Validated"
    REGISTERED = "Registered"
    APPROVED = "Approved"
    AUTHORIZED = "Authorized"
    COMPLETED = "Completed"
    INACTIVE = "Inactive"
    WITHDRAWN = "Withdrawn"
    REJECTED = "Rejected"
    DE_REGISTERED = "De-registered"


class UnitMetric(enum.StrEnum):
    TCO2E = "tCO2e"


class UnitType(enum.StrEnum):
    AVOIDANCE = "Avoidance"
    REDUCTION_NATURE = "Reduction - nature"
    REDUCTION_TECHNICAL = "Reduction - technical"
    REMOVAL_NATURE = "Removal - nature"
    REMOVAL_TECHNICAL = "Removal - technical"
    NOT_DETERMINED = "Not Determined"


class UnitStatus(enum.StrEnum):
    HELD = "Held"
    RETIRED = "Retired"
    CANCELLED = "Cancelled"
    EXPIRED = "Expired"
    INACTIVE = "Inactive"
    BUFFER = "Buffer"
    EXPORTED = "Exported"
    REJECTED = "Rejected"
    PENDING_EXPORT = "Pending Export"


class CorrespondingAdjustmentDeclaration(enum.StrEnum):
    COMMITTED = "Committed"
    NOT_REQUIRED = "Not Required"
    UNKNOWN = "Unknown"


class CorrespondingAdjustmentStatus(enum.StrEnum):
    NOT_APPLICABLE = "Not Applicable"
    NOT_STARTED = "Not Started"
    PENDING = "Pending"
    COMPLETED = "Completed"


class LabelType(enum.StrEnum):
    ENDORSEMENT = "Endorsement"
    LETTER_OF_QUALIFICATION = "Letter of Qualification"
    CERTIFICATION = "Certification"


# Statuses whose unitStatusReason CADT requires (its Joi rule lists them in lower case; the
# picklist values are capitalised, so both spellings are matched).
_REASON_REQUIRED = frozenset({UnitStatus.RETIRED, UnitStatus.CANCELLED})

COUNTRIES: frozenset[str] = frozenset(
    """Afghanistan|Albania|Algeria|Andorra|Angola|Antigua and Barbuda|Argentina|Armenia|Australia|
    Austria|Azerbaijan|Bahamas|Bahrain|Bangladesh|Barbados|Belarus|Belgium|Belize|Benin|Bhutan|
    Bolivia|Bosnia and Herzegovina|Botswana|Brazil|Brunei Darussalam|Bulgaria|Burkina Faso|Burundi|
    Cabo Verde|Cambodia|Cameroon|Canada|Central African Republic|Chad|Chile|China|Colombia|Comoros|
    Congo|Costa Rica|Côte d'Ivoire|Croatia|Cuba|Cyprus|Czechia|Democratic People's Republic of Korea|
    Democratic Republic of the Congo|Denmark|Djibouti|Dominica|Dominican Republic|Ecuador|Egypt|
    El Salvador|Equatorial Guinea|Eritrea|Estonia|Eswatini|Ethiopia|Fiji|Finland|France|Gabon|Gambia|
    Georgia|Germany|Ghana|Greece|Grenada|Guatemala|Guinea|Guinea-Bissau|Guyana|Haiti|Holy See|
    Honduras|Hungary|Iceland|India|Indonesia|Iran|Iraq|Ireland|Israel|Italy|Jamaica|Japan|Jordan|
    Kazakhstan|Kenya|Kiribati|Kuwait|Kyrgyzstan|Lao People's Democratic Republic|Latvia|Lebanon|
    Lesotho|Liberia|Libya|Liechtenstein|Lithuania|Luxembourg|Madagascar|Malawi|Malaysia|Maldives|
    Mali|Malta|Marshall Islands|Mauritania|Mauritius|Mexico|Micronesia|Monaco|Mongolia|Montenegro|
    Morocco|Mozambique|Myanmar|Namibia|Nauru|Nepal|Netherlands|New Zealand|Nicaragua|Niger|Nigeria|
    North Macedonia|Norway|Oman|Pakistan|Palau|Palestine|Panama|Papua New Guinea|Paraguay|Peru|
    Philippines|Poland|Portugal|Qatar|Republic of Korea|Republic of Moldova|Romania|
    Russian Federation|Rwanda|Saint Kitts and Nevis|Saint Lucia|Saint Vincent and the Grenadines|
    Samoa|San Marino|Sao Tome and Principe|Saudi Arabia|Senegal|Serbia|Seychelles|Sierra Leone|
    Singapore|Slovakia|Slovenia|Solomon Islands|Somalia|South Africa|South Sudan|Spain|Sri Lanka|
    Sudan|Suriname|Sweden|Switzerland|Syrian Arab Republic|Tajikistan|Thailand|Timor-Leste|Togo|
    Tonga|Trinidad and Tobago|Tunisia|Türkiye|Turkmenistan|Tuvalu|Uganda|Ukraine|
    United Arab Emirates|United Kingdom|United Republic of Tanzania|United States of America|Uruguay|
    Uzbekistan|Vanuatu|Venezuela|Viet Nam|Yemen|Zambia|Zimbabwe|Not Specified""".replace("\n", "")
    .replace("    ", "")
    .split("|")
)


# --------------------------------------------------------------------------- field types

_ISO_WITH_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$")


def _parse_datetime(value: Any) -> datetime:
    # CADT's Joi `date()` accepts almost anything; we accept what we also write back: a full
    # date-time with an explicit offset. A date alone or a naive time is ambiguous across zones.
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        if not _ISO_WITH_TIME.match(value):
            raise ValueError(f"{value!r} is not an ISO-8601 date-time with a time and 'Z' (or an offset)")
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError(f"expected an ISO-8601 date-time string, not {type(value).__name__}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset; CADT dates are UTC with 'Z'")
    return parsed.astimezone(timezone.utc)


def _format_datetime(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    # Milliseconds, like the JavaScript Date.toISOString() CADT nodes emit.
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


UTCDate = Annotated[
    datetime,
    BeforeValidator(_parse_datetime),
    PlainSerializer(_format_datetime, return_type=str, when_used="json"),
]
"""A timezone-aware UTC datetime; JSON form ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""


def _check_country(value: Any) -> Any:
    if isinstance(value, str) and value not in COUNTRIES:
        raise ValueError(f"{value!r} is not on the CADT country picklist")
    return value


Country = Annotated[str, BeforeValidator(_check_country)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=5000)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class CadtModel(BaseModel):
    """Common settings: CADT names verbatim, unknown keys rejected, picklists as enums."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, validate_default=True)

    def to_cadt(self) -> dict[str, Any]:
        """The record as CADT JSON (picklist values, ``Z`` dates, absent optionals left out)."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_cadt(cls, data: dict[str, Any]) -> Self:
        """Parse CADT JSON; raises ``pydantic.ValidationError`` naming each bad field."""
        return cls.model_validate(data)


def _ordered(start: datetime | None, end: datetime | None, what: str) -> None:
    if start is not None and end is not None and end < start:
        raise ValueError(f"{what}: end {end.isoformat()} is before start {start.isoformat()}")


# --------------------------------------------------------------------------- project children


class ProjectLocation(CadtModel):
    id: Id | None = None
    country: Country
    inCountryRegion: Text | None = None
    # Free text in CADT; we put a GeoJSON geometry or WKT here for the boundary overlap check.
    geographicIdentifier: Annotated[str, StringConstraints(min_length=1)]


class Issuance(CadtModel):
    id: Id | None = None
    warehouseProjectId: Id | None = None
    startDate: UTCDate
    endDate: UTCDate
    verificationApproach: Text
    verificationBody: Text
    verificationReportDate: UTCDate

    @model_validator(mode="after")
    def _period(self) -> Self:
        _ordered(self.startDate, self.endDate, "issuance monitoring period")
        return self


class Label(CadtModel):
    id: Id | None = None
    warehouseProjectId: Id | None = None
    label: Text
    labelType: LabelType
    creditingPeriodStartDate: UTCDate
    creditingPeriodEndDate: UTCDate
    validityPeriodStartDate: UTCDate
    validityPeriodEndDate: UTCDate
    unitQuantity: Annotated[int, Field(ge=0)]
    labelLink: Text

    @model_validator(mode="after")
    def _periods(self) -> Self:
        _ordered(self.creditingPeriodStartDate, self.creditingPeriodEndDate, "label crediting period")
        _ordered(self.validityPeriodStartDate, self.validityPeriodEndDate, "label validity period")
        return self


class Estimation(CadtModel):
    id: Id | None = None
    creditingPeriodStart: UTCDate
    creditingPeriodEnd: UTCDate
    unitCount: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _period(self) -> Self:
        _ordered(self.creditingPeriodStart, self.creditingPeriodEnd, "estimation crediting period")
        return self


class CoBenefit(CadtModel):
    id: Id | None = None
    cobenefit: Text


# --------------------------------------------------------------------------- project, unit


class Project(CadtModel):
    warehouseProjectId: Id | None = None  # assigned by the registry on creation
    currentRegistry: Text | None = None
    projectId: Id
    originProjectId: Id
    registryOfOrigin: Text
    program: Text | None = None
    projectName: Text
    projectLink: Text
    projectDeveloper: Text
    sector: Text
    projectType: Text
    projectTags: Text | None = None
    coveredByNDC: CoveredByNDC
    ndcInformation: Text | None = None
    projectStatus: ProjectStatus
    projectStatusDate: UTCDate
    unitMetric: UnitMetric
    methodology: Text
    methodology2: Text | None = None
    validationBody: Text | None = None
    validationDate: UTCDate | None = None
    description: Text | None = None
    # Child tables. CADT wants at least one item when a list is present, so empty is omitted.
    projectLocations: Annotated[list[ProjectLocation], Field(min_length=1)] | None = None
    issuances: Annotated[list[Issuance], Field(min_length=1)] | None = None
    labels: Annotated[list[Label], Field(min_length=1)] | None = None
    estimations: Annotated[list[Estimation], Field(min_length=1)] | None = None
    coBenefits: Annotated[list[CoBenefit], Field(min_length=1)] | None = None


class Unit(CadtModel):
    warehouseUnitId: Id | None = None  # assigned by the registry on creation
    projectLocationId: Id | None = None
    unitOwner: Text | None = None
    countryJurisdictionOfOwner: Country
    inCountryJurisdictionOfOwner: Text | None = None
    unitBlockStart: Id
    unitBlockEnd: Id
    unitCount: Annotated[int, Field(ge=1)]
    vintageYear: Annotated[int, Field(ge=1900, le=3000)]
    unitType: UnitType
    marketplace: Text | None = None
    marketplaceLink: Text | None = None
    marketplaceIdentifier: Text | None = None
    unitTags: str | None = None
    unitStatus: UnitStatus
    unitStatusReason: Text | None = None
    unitRegistryLink: Text
    correspondingAdjustmentDeclaration: CorrespondingAdjustmentDeclaration
    correspondingAdjustmentStatus: CorrespondingAdjustmentStatus
    # The unit's only link to its project: the nested issuance, identified by its id.
    issuance: Issuance
    labels: list[Label] | None = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.issuance.id is None:
            raise ValueError("a unit's nested issuance must carry its id (the unit's only link to its project)")
        if self.unitStatus in _REASON_REQUIRED and not self.unitStatusReason:
            raise ValueError(f"unitStatusReason is required when unitStatus is {self.unitStatus.value!r}")
        return self


__all__ = [
    "COUNTRIES",
    "CadtModel",
    "CoBenefit",
    "CorrespondingAdjustmentDeclaration",
    "CorrespondingAdjustmentStatus",
    "CoveredByNDC",
    "Estimation",
    "Issuance",
    "Label",
    "LabelType",
    "Project",
    "ProjectLocation",
    "ProjectStatus",
    "Unit",
    "UnitMetric",
    "UnitStatus",
    "UnitType",
    "UTCDate",
]
