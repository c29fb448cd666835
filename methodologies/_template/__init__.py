"""TEMPLATE for a new methodology package. NOT registered: copy it, do not import it from the registry.

Copy this folder to ``methodologies/<program>_<code>/v<major>/`` (e.g. ``methodologies/gs_mecd/v2/``),
replace every ``TODO`` and follow docs/methodology-guide.md. In the copy, this file registers the
methodology at import::

    from methodologies.<program>_<code>.v<major>.calculator import MyMethodology
    from mrv.methodology.registry import register

    METHODOLOGY = register(MyMethodology())

and one line in ``mrv/methodology/registry.py`` (``_MODULES``) makes the registry import it.
The template itself stays unregistered so ``mrv methodologies list`` never shows it; its test
(tests/methodologies/_template/test_template.py) keeps it working.
"""

from methodologies._template.calculator import TemplateMethodology

__all__ = ["TemplateMethodology"]
