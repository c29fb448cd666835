"""Where each rule of the calculator comes from, cited once (document, section, paragraph/equation).

TODO: replace with the methodology's own citations. Cite sections by name; give equation and
paragraph numbers only where you checked them against the published text. Every trace step, every
applicability condition and every contract rule points at one of these strings.
"""

from __future__ import annotations

DOCUMENT = "TEMPLATE example methodology v1.0 (not a real methodology)"  # TODO: full title and version

APPLICABILITY_GRID = "TEMPLATE v1.0, section 2 'Applicability', para 1: the project supplies electricity to a grid"
EG_NET = "TEMPLATE v1.0, section 5 'Baseline emissions', eq. (1): EG_net_y = EG_y − EG_aux_y"
EF = (
    "TEMPLATE v1.0, section 5, para 12: the measured emission factor may be used instead of the default; "
    "where both are available the lower one is used (conservativeness)"
)
BE = "TEMPLATE v1.0, section 5 'Baseline emissions', eq. (2): BE_y = EG_net_y × EF_y"
PE = "TEMPLATE v1.0, section 6 'Project emissions', eq. (3): PE_y = FC_y × EF_FC"
ER = "TEMPLATE v1.0, section 8 'Emission reductions', eq. (4): ER_y = BE_y − PE_y"
