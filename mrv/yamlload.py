"""YAML read by LibYAML's C loader, value for value as PyYAML's safe loader reads it.

The pure-Python safe loader costs tens of milliseconds per project file (a fleet's meter list;
the registry reads one per request). :func:`load_yaml_c` parses and composes with LibYAML and
builds plain documents directly; callers fall back to ``yaml.safe_load`` for anything else, so
errors keep its messages.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

CSafeLoader: Any = getattr(yaml, "CSafeLoader", None)  # LibYAML; None when PyYAML was built without it


_YAML: Final = "tag:yaml.org,2002:"
_YAML_SCALARS: Final = {_YAML + t: yaml.constructor.SafeConstructor.yaml_constructors[_YAML + t] for t in ("null", "bool", "int", "float", "timestamp")}
_YAML_SCALAR_CONSTRUCTOR: Final = yaml.constructor.SafeConstructor()  # its scalar constructors keep no state


class _NotPlainYAML(Exception):
    pass


def _plain_yaml(node: yaml.Node, seen: set[int]) -> Any:
    """The value of a composed YAML document made only of maps, sequences and core-schema scalars
    (strings, null, booleans, integers, floats, timestamps), each node used once: what
    SafeConstructor makes of it, by the same scalar constructors, without its generic machinery.
    Anything else (other tags, merge keys, aliases) raises :class:`_NotPlainYAML`."""
    if type(node) is yaml.ScalarNode:
        if node.tag == _YAML + "str":
            return node.value
        construct = _YAML_SCALARS.get(node.tag)
        if construct is None:
            raise _NotPlainYAML
        return construct(_YAML_SCALAR_CONSTRUCTOR, node)
    if id(node) in seen:
        raise _NotPlainYAML  # an alias of an earlier node (or a cycle)
    seen.add(id(node))
    if type(node) is yaml.MappingNode and node.tag == _YAML + "map":
        out = {}
        for key, value in node.value:
            if type(key) is not yaml.ScalarNode:
                raise _NotPlainYAML  # SafeConstructor refuses most of these keys: let it say so
            out[_plain_yaml(key, seen)] = _plain_yaml(value, seen)
        return out
    if type(node) is yaml.SequenceNode and node.tag == _YAML + "seq":
        return [_plain_yaml(item, seen) for item in node.value]
    raise _NotPlainYAML


def load_yaml_c(text: str) -> Any:
    """``yaml.load(text, Loader=CSafeLoader)``: the same value, or the same exception. LibYAML
    parses and composes; a plain document (:func:`_plain_yaml`) is then built directly, anything
    else (or anything that fails there) by SafeConstructor as ``yaml.load`` does."""
    loader = CSafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            return _plain_yaml(node, set())
        except Exception:  # _NotPlainYAML, or a scalar that does not construct: SafeConstructor decides
            return loader.construct_document(node)
    finally:
        loader.dispose()
