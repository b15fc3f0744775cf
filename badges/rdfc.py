"""RDFC-1.0 canonical N-Quads straight from expanded JSON-LD, for the usual shape of credentials."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "ABSOLUTE_IRI",
    "RDF_TYPE",
    "Statements",
    "Unsupported",
    "canonical_nquads",
    "canonical_statements",
    "escape",
    "literal",
]

RDF_TYPE: Final = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
_XSD_STRING: Final = "http://www.w3.org/2001/XMLSchema#string"
_XSD_BOOLEAN: Final = "http://www.w3.org/2001/XMLSchema#boolean"
_XSD_INTEGER: Final = "http://www.w3.org/2001/XMLSchema#integer"
_XSD_DOUBLE: Final = "http://www.w3.org/2001/XMLSchema#double"
_RDF_LANGSTRING: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
# The test pyld applies before it emits a predicate (note the '+' to '.' range, as in pyld).
ABSOLUTE_IRI: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*|_):[^\s]*$")
# Node ids, types and datatypes: the stricter test of badges.jsonld's safe mode, so that a
# document this module accepts is one the safe-mode walk of the expanded form would accept.
_RESOURCE_IRI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")
# Keys of a value object that do not change the RDF literal.
_VALUE_KEYS: Final = frozenset({"@value", "@type", "@language", "@index"})


def escape(lexical: str) -> str:
    """A literal's lexical form as N-Quads writes it (the escapes pyld and RDFC-1.0 use).

    The usual string needs no escape: five substring tests find that several times faster than
    the replacements would. Chained replace is faster than str.translate for the rest; the
    backslash goes first so no escape is escaped again.
    """
    if not (
        "\\" in lexical or '"' in lexical or "\n" in lexical or "\r" in lexical or "\t" in lexical
    ):
        return lexical
    return (
        lexical.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )


class Unsupported(Exception):
    """The expanded document uses a feature this fast path leaves to pyld."""


class Statements:
    """The RDF statements of one expanded document, with blank nodes labelled _:b0, _:b1, ..."""

    def __init__(self) -> None:
        # (subject, predicate, object) as N-Quads terms, in first-seen order, without duplicates.
        self.quads: dict[tuple[str, str, str], None] = {}
        self.blank_labels: dict[str, str] = {}
        self.count = 0

    def new_blank(self) -> str:
        label = f"_:b{self.count}"
        self.count += 1
        return label

    def blank(self, existing: str) -> str:
        label = self.blank_labels.get(existing)
        if label is None:
            label = self.blank_labels[existing] = self.new_blank()
        return label

    def resource(self, iri: Any) -> str:
        if not isinstance(iri, str):
            raise Unsupported("a node identifier is not a string")
        if iri.startswith("_:"):
            return self.blank(iri)
        if _RESOURCE_IRI.match(iri) is None or ">" in iri:
            raise Unsupported(f"not an absolute IRI: {iri!r}")
        return f"<{iri}>"

    def node(self, node: Mapping[str, Any]) -> str:
        """Emit the statements of a node object and return the term that names it."""
        node_id = node.get("@id")
        subject = self.new_blank() if node_id is None else self.resource(node_id)
        quads = self.quads
        for key, values in node.items():
            if key == "@id" or key == "@index":
                continue
            if key == "@type":
                for type_ in values:
                    quads[(subject, RDF_TYPE, self.resource(type_))] = None
                continue
            if key.startswith("@") or key.startswith("_:"):
                # @reverse, @graph, @included, ... and generalized RDF: pyld handles those.
                raise Unsupported(f"expanded key {key!r}")
            if ABSOLUTE_IRI.match(key) is None or ">" in key:
                raise Unsupported(f"property {key!r} is not an absolute IRI")
            predicate = f"<{key}>"
            for item in values:
                if not isinstance(item, Mapping):
                    raise Unsupported("a property value is not an object")
                if "@value" in item:
                    term = literal(item)
                elif "@list" in item or "@set" in item:
                    raise Unsupported("lists")
                else:
                    term = self.node(item)
                quads[(subject, predicate, term)] = None
        return subject


def literal(item: Mapping[str, Any]) -> str:
    if not _VALUE_KEYS.issuperset(item):
        raise Unsupported(f"value object keys {sorted(item)}")
    value = item["@value"]
    datatype = item.get("@type")
    if datatype is not None and (not isinstance(datatype, str) or datatype.startswith("@")):
        raise Unsupported(f"value type {datatype!r}")  # @json literals
    if datatype == _XSD_DOUBLE and not isinstance(value, bool):
        raise Unsupported("xsd:double literals")  # pyld writes its canonical double form
    if isinstance(value, bool):
        lexical = "true" if value else "false"
        datatype = datatype or _XSD_BOOLEAN
    elif isinstance(value, int):
        if abs(value) >= 10**21:
            raise Unsupported("integers that RDF writes as doubles")
        lexical = str(value)
        datatype = datatype or _XSD_INTEGER
    elif isinstance(value, str):
        lexical = value
        if "@language" in item:
            if datatype is not None:
                raise Unsupported("a typed literal with a language")
            language = item["@language"]
            if not isinstance(language, str):
                raise Unsupported("a language tag that is not a string")
            return f'"{escape(lexical)}"@{language}' if language else (f'"{escape(lexical)}"')
        datatype = datatype or _XSD_STRING
    else:
        raise Unsupported(f"a {type(value).__name__} literal")  # floats: pyld's canonical doubles
    if "@language" in item:
        raise Unsupported("a language on a non-string literal")
    if ">" in datatype or _RESOURCE_IRI.match(datatype) is None:
        raise Unsupported(f"datatype {datatype!r}")
    escaped = escape(lexical)
    if datatype == _XSD_STRING:
        return f'"{escaped}"'
    return f'"{escaped}"^^<{datatype}>'


def canonical_nquads(expanded: Any) -> str:
    """RDFC-1.0 canonical N-Quads of an expanded JSON-LD document (default graph only).

    Every node id, type and datatype it accepts is an absolute IRI (or a blank node): it raises
    Unsupported on anything the safe-mode walk of badges.jsonld would report.

    Raises Unsupported when the document needs more than this fast path does: lists, named
    graphs, reverse properties, JSON or double literals, IRIs pyld would drop, or blank nodes
    that the first-degree hashes do not tell apart (the N-degree step). The caller then uses
    pyld, which gives the same result for everything this function accepts.
    """
    if not isinstance(expanded, list):
        raise Unsupported("expanded form is not a list")
    graph = Statements()
    for node in expanded:
        if not isinstance(node, Mapping) or "@value" in node or "@list" in node:
            raise Unsupported("top-level item is not a node object")
        graph.node(node)
    return canonical_statements(graph)


def canonical_statements(graph: Statements) -> str:
    """RDFC-1.0 canonical N-Quads of the statements in graph (see canonical_nquads).

    Raises Unsupported for blank nodes that the first-degree hashes do not tell apart.
    Terms are written as N-Quads: an IRI starts with '<', a literal with '"', a blank node '_'.
    """
    if not graph.count:
        return "".join(sorted([f"{s} {p} {o} .\n" for s, p, o in graph.quads]))
    lines: list[str] = []
    linked: list[tuple[str, str, str]] = []
    # Hash First Degree Quads for every blank node (RDFC-1.0 section 4.6). Like pyld, a quad
    # whose subject and object are the same blank node is listed twice for it.
    mentions: dict[str, list[tuple[str, str, str]]] = {}
    for quad in graph.quads:
        subject, predicate, obj = quad
        blank_subject = subject[0] == "_"
        blank_object = obj[0] == "_"
        if not (blank_subject or blank_object):
            lines.append(f"{subject} {predicate} {obj} .\n")
            continue
        linked.append(quad)
        if blank_subject:
            mentions.setdefault(subject, []).append(quad)
        if blank_object:
            mentions.setdefault(obj, []).append(quad)
    hashes: dict[str, str] = {}
    for blank, related in mentions.items():
        hashed = []
        for subject, predicate, obj in related:
            if subject[0] == "_":
                subject = "_:a" if subject == blank else "_:z"
            if obj[0] == "_":
                obj = "_:a" if obj == blank else "_:z"
            hashed.append(f"{subject} {predicate} {obj} .\n")
        hashed.sort()
        hashes[blank] = hashlib.sha256("".join(hashed).encode("utf-8")).hexdigest()
    if len(set(hashes.values())) != len(hashes):
        raise Unsupported("blank nodes that need the Hash N-Degree Quads step")

    # Every blank node has a unique first-degree hash: canonical labels follow the hash order.
    canonical = {
        blank: f"_:c14n{index}"
        for index, blank in enumerate(sorted(hashes, key=hashes.__getitem__))
    }
    for subject, predicate, obj in linked:
        if subject[0] == "_":
            subject = canonical[subject]
        if obj[0] == "_":
            obj = canonical[obj]
        lines.append(f"{subject} {predicate} {obj} .\n")
    lines.sort()
    return "".join(lines)
