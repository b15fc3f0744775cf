"""RDF statements straight from a compacted JSON-LD document, for the usual shape of credentials.

pyld's expansion builds the whole expanded form (a copy of the document with every term, type
and value written out), and badges.rdfc then walks it again to write the statements; for a
credential that expansion is most of the time canonicalization takes. This module walks the
document once and writes the statements as it goes, taking every decision the way pyld 3.3.0's
expansion (JsonLdProcessor._expand, _expand_object, _prepare_nested_context, _expand_value)
takes it, with pyld's own context processing and IRI expansion. What it learns about a context
(how a key expands, its term definition, the context a property or a set of types leads to) it
keeps by the context's _uuid, which pyld gives every processed context and never reuses; and for
each shape of node (the context it is found in, its keys and its types) the plan to write it:
the predicates, type statements and how each value is written, which do not change from one
credential to the next. Only the values (ids, names, dates) are read from each document.

It accepts only what it can do exactly as pyld would and raises badges.rdfc.Unsupported for the
rest: every keyword but @context, @id and @type (value objects, @list, @graph, @reverse, @nest,
@included, @index, ...), containers other than @set, @json and reverse terms, arrays of arrays,
terms with a base direction, more than one key for @type, keys and identifiers that are not
absolute IRIs (pyld would drop them: safe mode reports them), anything that is not JSON, and a
top-level node with nothing to say. The caller then expands with pyld, which gives the same
statements for everything this module accepts (tests/test_badges_rdfc.py checks it on the
project's credentials and on documents made to reach every branch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from badges.rdfc import ABSOLUTE_IRI, RDF_TYPE, Statements, Unsupported, escape, literal

__all__ = ["Contexts", "statements"]

_ACCEPTED_CONTAINERS: Final = frozenset({"@set"})

# How a property's scalar values become RDF terms (decided once per context and key).
_IRI: Final = 0  # "@type": "@id": the string is an IRI (document-relative expansion)
_VOCAB: Final = 1  # "@type": "@vocab": the string is an IRI (vocabulary-relative expansion)
_LITERAL: Final = 2  # anything else: a literal, typed or language-tagged from the definition

ExpandIri = Callable[..., Any]
ProcessContext = Callable[..., Any]


class Contexts:
    """What is learnt about pyld active contexts, by their _uuid; bounded by clearing when full.

    Not thread-safe: badges.jsonld calls it under its processing lock.
    """

    def __init__(self, maxsize: int = 20_000) -> None:
        self.maxsize = maxsize
        # (uuid, key) -> ("@id",) | ("@type",) | ("x", why not) |
        #                ("p", "<predicate>", its scoped context or None, predicate IRI)
        self.keys: dict[tuple[str, str], tuple[Any, ...]] = {}
        # (uuid, key) -> how its scalar values are written: (kind, datatype or None, language or
        #                None, what follows a string literal's quotes or None when not known)
        self.values: dict[tuple[str, str], tuple[int, str | None, str | None, str | None]] = {}
        # (uuid, key, revert) -> active context for a node that is the value of key
        self.entered: dict[tuple[str, str | None, bool], Any] = {}
        # (uuid, key) -> active context for the values of key (its property-scoped context)
        self.scoped: dict[tuple[str, str], Any] = {}
        # (uuid, sorted types) -> active context after the types' type-scoped contexts
        self.typed: dict[tuple[str, tuple[str, ...]], Any] = {}
        # (uuid, context URLs) -> active context after a node's own @context of URLs
        self.local: dict[tuple[str, tuple[str, ...]], Any] = {}
        # (uuid, property, keys) -> (context before the types' contexts, key for @type)
        self.shapes: dict[tuple[Any, ...], tuple[Any, str | None]] = {}
        # (uuid of that context, keys, types) -> (key for @id, its context, type terms,
        #  ((key, predicate term, context of its values, how its scalars are written), ...))
        self.plans: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def size(self) -> int:
        return (
            len(self.keys)
            + len(self.values)
            + len(self.entered)
            + len(self.scoped)
            + len(self.typed)
            + len(self.local)
            + len(self.shapes)
            + len(self.plans)
        )

    def clear(self) -> None:
        for memo in (
            self.keys,
            self.values,
            self.entered,
            self.scoped,
            self.typed,
            self.local,
            self.shapes,
            self.plans,
        ):
            memo.clear()


def _uuid(ctx: Mapping[str, Any]) -> str:
    uuid = ctx.get("_uuid")
    if not isinstance(uuid, str):
        raise Unsupported("an active context without an identifier")
    return uuid


def _suffix(probe: dict[str, Any]) -> str | None:
    """What follows the quoted lexical form of every string literal written like probe (an
    empty string): '', '^^<datatype>' or '@language'; None if badges.rdfc refuses it."""
    try:
        return literal(probe)[2:]
    except Unsupported:
        return None


def _entry(ctx: Mapping[str, Any], key: str, part: str) -> Any:
    """pyld's JsonLdProcessor.get_context_value for a term definition's own entry."""
    mappings = ctx["mappings"]
    if key in mappings:
        entry = mappings[key]
        if entry is not None:
            return entry.get(part)
    return None


class _Walk:
    """One document's walk; the memos and pyld's functions are shared across documents."""

    def __init__(
        self,
        contexts: Contexts,
        expand_iri: ExpandIri,
        process_context: ProcessContext,
        options: Mapping[str, Any],
    ) -> None:
        self.memo = contexts
        self.expand_iri = expand_iri
        self.process_context = process_context
        self.options = options
        self.graph = Statements()

    # -- what a key means in a context ---------------------------------------------------------

    def key(self, ctx: Any, uuid: str, key: str) -> tuple[Any, ...]:
        memo_key = (uuid, key)
        info = self.memo.keys.get(memo_key)
        if info is None:
            info = self._remember(self.memo.keys, memo_key, self._key(ctx, key))
        return info

    def _key(self, ctx: Any, key: str) -> tuple[Any, ...]:
        expanded = self.expand_iri(ctx, key, vocab=True)
        if expanded == "@id" or expanded == "@type":
            return (expanded,)
        if not isinstance(expanded, str) or expanded.startswith("@"):
            # Other keywords, and keys pyld drops (safe mode reports those).
            return ("x", f"key {key!r} expands to {expanded!r}")
        if expanded.startswith("_:") or ABSOLUTE_IRI.match(expanded) is None or ">" in expanded:
            return ("x", f"key {key!r} expands to {expanded!r}")
        container = _entry(ctx, key, "@container")
        containers = container if isinstance(container, list) else [container]
        if container is not None and not _ACCEPTED_CONTAINERS.issuperset(containers):
            return ("x", f"container {container!r}")
        if _entry(ctx, key, "@type") == "@json":
            return ("x", "a JSON literal")
        if _entry(ctx, key, "reverse"):
            return ("x", "a reverse property")
        return ("p", f"<{expanded}>", _entry(ctx, key, "@context"), expanded)

    def value_kind(self, ctx: Any, uuid: str, key: str, expanded: str) -> tuple[Any, ...]:
        """How key's scalar values expand in ctx (pyld's _expand_value), once per context."""
        memo_key = (uuid, key)
        info = self.memo.values.get(memo_key)
        if info is None:
            info = self._remember(self.memo.values, memo_key, self._value_kind(ctx, key, expanded))
        return info

    def _value_kind(
        self, ctx: Any, key: str, expanded: str
    ) -> tuple[int, str | None, str | None, str | None]:
        if self.expand_iri(ctx, key, vocab=True) != expanded:
            raise Unsupported(f"key {key!r} means something else in its own scoped context")
        container = _entry(ctx, key, "@container")
        containers = container if isinstance(container, list) else [container]
        if container is not None and not _ACCEPTED_CONTAINERS.issuperset(containers):
            raise Unsupported(f"container {container!r} in a scoped context")
        if _entry(ctx, key, "reverse"):
            raise Unsupported("a reverse property in a scoped context")
        type_ = _entry(ctx, key, "@type")
        if type_ == "@id":
            return (_IRI, None, None, None)
        if type_ == "@vocab":
            return (_VOCAB, None, None, None)
        if type_ is not None and type_ != "@none":
            if not isinstance(type_, str) or type_.startswith("@"):
                raise Unsupported(f"value type {type_!r}")
            return (_LITERAL, type_, None, _suffix({"@value": "", "@type": type_}))
        # pyld's get_context_value for @language and @direction: the context's default, unless
        # the term is defined, when its definition decides (a null definition means none).
        language = ctx.get("@language")
        direction = ctx.get("@direction")
        mappings = ctx["mappings"]
        if key in mappings:
            entry = mappings[key]
            if entry is None:
                language = direction = None
            else:
                language = entry.get("@language", language)
                direction = entry.get("@direction", direction)
        if direction is not None:
            raise Unsupported("a base direction")
        if language is None:
            return (_LITERAL, None, None, "")
        if not isinstance(language, str):
            raise Unsupported("a language that is not a string")
        return (_LITERAL, None, language, _suffix({"@value": "", "@language": language}))

    # -- contexts --------------------------------------------------------------------------------

    def _remember(self, memo: dict[Any, Any], key: Any, value: Any) -> Any:
        if self.memo.size() >= self.memo.maxsize:
            self.memo.clear()
        memo[key] = value
        return value

    def enter(self, ctx: Any, uuid: str, active_property: str | None, element: Mapping) -> Any:
        """The active context for a node object, up to its own @context (pyld's _expand)."""
        revert = "previousContext" in ctx
        if revert and not ctx["previousContext"]:
            raise Unsupported("an empty previous context")
        if revert and len(element) <= 2 and "@context" not in element:
            # pyld keeps a type-scoped context for a value object or a bare reference.
            for key in sorted(element):
                expanded = self.expand_iri(ctx, key, vocab=True)
                if expanded == "@value":
                    raise Unsupported("a value object")
                if expanded == "@id" and len(element) == 1:
                    revert = False
                    break
        memo_key = (uuid, active_property, revert)
        entered = self.memo.entered.get(memo_key)
        if entered is not None:
            return entered
        result = ctx["previousContext"] if revert else ctx
        if active_property is not None:
            scoped = _entry(ctx, active_property, "@context")
            if scoped is not None:
                result = self.process_context(result, scoped, self.options, override_protected=True)
        return self._remember(self.memo.entered, memo_key, result)

    def property_context(self, ctx: Any, uuid: str, key: str, scoped: Any) -> Any:
        memo_key = (uuid, key)
        result = self.memo.scoped.get(memo_key)
        if result is None:
            result = self.process_context(
                ctx, scoped, self.options, propagate=True, override_protected=True
            )
            self._remember(self.memo.scoped, memo_key, result)
        return result

    def local_context(self, ctx: Any, local: Any) -> Any:
        if isinstance(local, Mapping) and len(local) == 1 and "@context" in local:
            raise Unsupported("a context that only holds @context")
        urls = local if isinstance(local, list) else [local]
        if not all(isinstance(url, str) for url in urls):
            # Inline contexts: pyld's processing, memoized by badges.jsonld on their JSON.
            return self.process_context(ctx, local, self.options)
        memo_key = (_uuid(ctx), tuple(urls))
        result = self.memo.local.get(memo_key)
        if result is None:
            result = self.process_context(ctx, local, self.options)
            self._remember(self.memo.local, memo_key, result)
        return result

    def typed_context(self, ctx: Any, uuid: str, types: tuple[str, ...]) -> Any:
        memo_key = (uuid, types)
        result = self.memo.typed.get(memo_key)
        if result is None:
            result = ctx
            for type_ in types:  # sorted, as pyld applies them
                scoped = _entry(ctx, type_, "@context")
                if scoped is not None and scoped is not False:
                    result = self.process_context(result, scoped, self.options, propagate=False)
            self._remember(self.memo.typed, memo_key, result)
        return result

    # -- the walk -------------------------------------------------------------------------------

    def node(self, ctx: Any, active_property: str | None, element: dict[str, Any]) -> str:
        """Write the statements of a node object; return the term that names it."""
        memo = self.memo
        keys = tuple(element)
        shape: tuple[Any, str | None] | None
        if "@context" in element:  # not part of the shape's key: never kept
            shape = self._shape(ctx, active_property, element)
        else:
            shape_key = (ctx["_uuid"], active_property, keys)
            shape = memo.shapes.get(shape_key)
            if shape is None:
                shape = self._shape(ctx, active_property, element)
                self._remember(memo.shapes, shape_key, shape)
        node_ctx, type_key = shape
        types: tuple[Any, ...] | None = None
        if type_key is not None:
            raw = element[type_key]
            types = tuple(raw) if isinstance(raw, list) else (raw,)
        plan_key = (node_ctx["_uuid"], keys, types)
        try:
            plan = memo.plans.get(plan_key)
        except TypeError:  # a type that is not a string (a dict, a list): pyld refuses those
            raise Unsupported("a @type that is not a string or a list of strings") from None
        if plan is None:
            plan = self._plan(node_ctx, element, type_key, types)
            self._remember(memo.plans, plan_key, plan)
        id_key, id_ctx, type_terms, properties = plan

        graph = self.graph
        if id_key is None:
            subject = graph.new_blank()
        else:
            node_id = element[id_key]
            if not isinstance(node_id, str):
                raise Unsupported("@id is not a string")
            subject = graph.resource(self.expand_iri(id_ctx, node_id, base=self.options["base"]))
        quads = graph.quads
        for type_ in type_terms:
            quads[(subject, RDF_TYPE, type_)] = None
        written = bool(type_terms)
        for key, predicate, term_ctx, value_kind in properties:
            suffix = value_kind[3]
            value = element[key]
            for item in value if isinstance(value, list) else (value,):
                if item is None:
                    continue
                if suffix is not None and type(item) is str:
                    # The usual value: a string literal, written as badges.rdfc.literal would.
                    term = f'"{escape(item)}"{suffix}'
                elif isinstance(item, dict):
                    term = self.node(term_ctx, key, item)
                elif isinstance(item, list):
                    raise Unsupported("an array in an array")
                else:
                    term = self.scalar(term_ctx, value_kind, item)
                quads[(subject, predicate, term)] = None
                written = True
        if active_property is None and not written:
            raise Unsupported("a top-level node that pyld drops")
        return subject

    def _shape(
        self, ctx: Any, active_property: str | None, element: dict[str, Any]
    ) -> tuple[Any, str | None]:
        """The node's context before its types' contexts, and its key for @type: decided by
        the context it is found in, the property it is the value of and its keys (and its own
        @context, when it has one)."""
        ctx = self.enter(ctx, _uuid(ctx), active_property, element)
        if "@context" in element:
            ctx = self.local_context(ctx, element["@context"])
        uuid = _uuid(ctx)
        type_key = None
        for key in element:
            if key != "@context" and self.key(ctx, uuid, key)[0] == "@type":
                if type_key is not None:
                    raise Unsupported("two keys for @type")
                type_key = key
        return ctx, type_key

    def _plan(
        self,
        node_ctx: Any,
        element: dict[str, Any],
        type_key: str | None,
        types: tuple[Any, ...] | None,
    ) -> tuple[str | None, Any, tuple[str, ...], tuple[tuple[str, str, Any, Any], ...]]:
        """How to write a node with these keys and types, found in node_ctx: decided by those
        alone (pyld's _prepare_nested_context and _expand_object)."""
        ctx = node_ctx
        if types is not None:
            if not types or not all(isinstance(type_, str) for type_ in types):
                raise Unsupported("a @type that is not a string or a list of strings")
            ctx = self.typed_context(node_ctx, _uuid(node_ctx), tuple(sorted(types)))
        uuid = _uuid(ctx)
        base = self.options["base"]
        id_key: str | None = None
        type_terms: tuple[str, ...] = ()
        properties: list[tuple[str, str, Any, Any]] = []
        for key in element:
            if key == "@context":
                continue
            info = self.key(ctx, uuid, key)
            kind = info[0]
            if kind == "p":
                term_ctx = (
                    ctx if info[2] is None else self.property_context(ctx, uuid, key, info[2])
                )
                value_kind = self.value_kind(term_ctx, _uuid(term_ctx), key, info[3])
                properties.append((key, info[1], term_ctx, value_kind))
            elif kind == "@id":
                if id_key is not None:
                    raise Unsupported("two keys for @id")
                id_key = key
            elif kind == "@type":
                if key != type_key or types is None:
                    raise Unsupported("the key for @type changes with the types' contexts")
                terms = []
                for type_ in types:
                    # Expanded in the context from before the type-scoped contexts, as pyld does.
                    iri = self.expand_iri(node_ctx, type_, vocab=True, base=base)
                    if not isinstance(iri, str) or iri.startswith("_:"):
                        raise Unsupported(f"type {type_!r}")
                    terms.append(self.graph.resource(iri))
                type_terms = tuple(terms)
            else:
                raise Unsupported(info[1])
        return id_key, ctx, type_terms, tuple(properties)

    def scalar(
        self, ctx: Any, kind: tuple[int, str | None, str | None, str | None], value: Any
    ) -> str:
        how, datatype, language, _ = kind
        if isinstance(value, str):
            if how == _IRI:
                return self.graph.resource(self.expand_iri(ctx, value, base=self.options["base"]))
            if how == _VOCAB:
                return self.graph.resource(
                    self.expand_iri(ctx, value, vocab=True, base=self.options["base"])
                )
            if datatype is None and language is None:
                return f'"{escape(value)}"'
            if datatype is not None:
                return literal({"@value": value, "@type": datatype})
            return literal({"@value": value, "@language": language})
        if not isinstance(value, (bool, int, float)):
            raise Unsupported(f"a {type(value).__name__} value")
        # Numbers and booleans: typed when the term says so, else their own datatype.
        item: dict[str, Any] = {"@value": value}
        if how == _LITERAL and datatype is not None:
            item["@type"] = datatype
        return literal(item)


def statements(
    document: Mapping[str, Any],
    contexts: Contexts,
    initial_context: Any,
    expand_iri: ExpandIri,
    process_context: ProcessContext,
    options: Mapping[str, Any],
) -> Statements:
    """The RDF statements of a compacted JSON-LD document, or Unsupported (see the module)."""
    if not isinstance(document, dict):
        raise Unsupported("the document is not a dict")  # pyld reads only dicts as objects
    walk = _Walk(contexts, expand_iri, process_context, options)
    walk.node(initial_context, None, document)
    return walk.graph
