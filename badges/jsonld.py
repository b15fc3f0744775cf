"""Offline JSON-LD for credentials: bundled contexts, RDFC-1.0 canonical form, safe-mode check."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import traceback
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

import structlog
from pyld import jsonld as _pyld
from pyld.context_resolver import ContextResolver

from badges import ldquads, rdfc

log = structlog.get_logger(__name__)

__all__ = [
    "BUNDLED_CONTEXTS",
    "ContextNotBundledError",
    "DocumentError",
    "RelativeIriError",
    "UndefinedTermError",
    "UnsafeDocumentError",
    "canonicalize",
    "ensure_all_terms_defined",
    "fast_path_failures",
    "load_document",
]

# URL -> (file in badges/contexts/, sha256 of its bytes). Keep in step with contexts/SOURCES.md.
BUNDLED_CONTEXTS: Final[Mapping[str, tuple[str, str]]] = {
    "https://www.w3.org/ns/credentials/v2": (
        "credentials-v2.jsonld",
        "8a9f494a89ecc51db093e90e84713e07e84d6d9204364a9b3c7868b21751236f",
    ),
    "https://www.w3.org/2018/credentials/v1": (
        "credentials-v1.jsonld",
        "00d7dd6d3ad8b920e3e550dd3a3d9090bffcac84cdbf943da6924b3e0a5c8bb8",
    ),
    "https://w3id.org/security/data-integrity/v2": (
        "data-integrity-v2.jsonld",
        "0f77743daf5b4e8fc067fc5ba5b21044283053aa717fc6b0219843bed3b00363",
    ),
    "https://w3id.org/security/data-integrity/v1": (
        "data-integrity-v1.jsonld",
        "b5d829bd09aa7c42abc6efa0c8ed7635313b5487f37ccfce3ecd149ca9418554",
    ),
    "https://w3id.org/security/multikey/v1": (
        "multikey-v1.jsonld",
        "c5f3806f8286920573221938917988a18a4cc5a09e968d29649613c7a1c2b1f6",
    ),
    "https://www.w3.org/ns/did/v1": (
        "did-v1.jsonld",
        "62c1054bf404d6dd3a4b26b64f830fd72095f6a26edc4469908c94351352ce5f",
    ),
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": (
        "ob-v3p0-context-3.0.3.json",
        "3d34f4d4ef1bce691106e63798beb5e7b862ba841423f5ee1e53ab7ddf3bca84",
    ),
    "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json": (
        "ob-v3p0-extensions.json",
        "2d013f981d1f4516081a6a04e55468ba2b071d4153b794f19a79715c45a89a5e",
    ),
}


class DocumentError(ValueError):
    """A document cannot be processed as JSON-LD with the bundled contexts."""


class ContextNotBundledError(DocumentError):
    """A document names a context URL that is not bundled (nothing is fetched from the network)."""

    def __init__(self, url: str) -> None:
        self.url = url
        known = ", ".join(sorted(BUNDLED_CONTEXTS))
        super().__init__(
            f"JSON-LD context {url!r} is not bundled with badges and will not be fetched "
            f"from the network; bundled contexts: {known}"
        )


class UnsafeDocumentError(DocumentError):
    """Part of a document would be silently lost by JSON-LD processing, so it would go unsigned."""


class UndefinedTermError(UnsafeDocumentError):
    """A property or type name is not defined by the document's @context (JSON-LD safe mode)."""

    def __init__(self, terms: list[str], locations: list[str]) -> None:
        self.terms = terms
        self.locations = locations
        names = ", ".join(repr(t) for t in terms)
        plural = "s" if len(terms) > 1 else ""
        message = (
            f"undefined JSON-LD term{plural} {names}: not defined by the document's @context, "
            "so JSON-LD processing would drop it and it would not be signed"
        )
        if locations:
            message += f" (found at {', '.join(locations)})"
        super().__init__(message)


class RelativeIriError(UnsafeDocumentError):
    """An identifier is not an absolute IRI; RDF conversion would drop what it names."""

    def __init__(self, iris: list[str]) -> None:
        self.iris = iris
        names = ", ".join(repr(i) for i in iris)
        super().__init__(
            f"not an absolute IRI: {names}; JSON-LD processing would drop the statements "
            "that use it, so they would not be signed (use a full IRI: https://..., urn:uuid:...)"
        )


# ---------------------------------------------------------------------------------------------
# Document loader: bundled contexts only.

_PARSED: dict[str, dict[str, Any]] = {}
_PARSED_LOCK = threading.Lock()


def _bundled_document(url: str) -> dict[str, Any]:
    """The parsed bundled context for url, read and integrity-checked on first use."""
    parsed = _PARSED.get(url)
    if parsed is not None:
        return parsed
    entry = BUNDLED_CONTEXTS.get(url)
    if entry is None:
        raise ContextNotBundledError(url)
    filename, expected_sha256 = entry
    with _PARSED_LOCK:
        parsed = _PARSED.get(url)
        if parsed is None:
            data = resources.files(__package__).joinpath("contexts", filename).read_bytes()
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected_sha256:
                raise DocumentError(
                    f"bundled context {filename} has sha256 {actual}, expected {expected_sha256}"
                )
            parsed = json.loads(data)
            if not isinstance(parsed, dict):
                raise DocumentError(f"bundled context {filename} is not a JSON object")
            _PARSED[url] = parsed
    return parsed


def load_document(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """pyld document loader serving only the bundled contexts; any other URL raises."""
    document = _bundled_document(url)
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        # pyld may rewrite relative context URLs in place: hand it a private copy.
        "document": copy.deepcopy(document),
        # "static" lets pyld keep the resolved context in its shared cache (ours, see below).
        "tag": "static",
    }


# ---------------------------------------------------------------------------------------------
# pyld processing with private caches.


class _LruCache:
    """A small bounded mapping (the part of a dict that pyld's ContextResolver uses)."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, default: Any = None) -> Any:
        try:
            self._items.move_to_end(key)
        except KeyError:
            return default
        return self._items[key]

    def __setitem__(self, key: Hashable, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._maxsize:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


# Resolved contexts by URL (or canonical JSON for inline contexts). Private to this module so
# nothing else in the process that uses pyld with another loader can feed it different content.
_RESOLVED_CONTEXTS = _LruCache(maxsize=256)
# Processed active contexts, by (parent active context id, local context JSON, flags). pyld keys
# its own cache of processed contexts on a fresh clone for every type-scoped context, so it
# misses on every nested node; this cache makes canonicalization about 3x faster.
_PROCESSED_CONTEXTS = _LruCache(maxsize=512)
# IRI expansion results, by (active context id, value, base, vocab). pyld expands the same few
# hundred terms against the same frozen active contexts for every document; the lookups it
# repeats each time are a third of the expansion's cost. Bounded by clearing when full.
_EXPANDED_IRIS: dict[tuple[Any, ...], Any] = {}
_EXPANDED_IRIS_MAX: Final = 50_000
# What badges.ldquads learns about the active contexts above (by their _uuid).
_LDQUADS_CONTEXTS = ldquads.Contexts()
# pyld and these caches are not thread-safe; processing is pure Python and holds the GIL anyway.
_LOCK = threading.RLock()

_ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")


def _is_absolute_or_blank(iri: str) -> bool:
    return iri.startswith("_:") or _ABSOLUTE_IRI.match(iri) is not None


class _Processor(_pyld.JsonLdProcessor):
    """pyld processor that checks expansion output in safe mode and memoizes contexts."""

    def __init__(self, *, safe: bool, memoize: bool = True) -> None:
        self._dropped: list[str | None] = []
        super().__init__(on_property_dropped=self._dropped.append)
        self._safe = safe
        self._memoize = memoize
        # canonicalize() lets badges.rdfc do the walk over the expanded form (see there).
        self.defer_walk = False
        # > 0 while a context is being processed: active contexts are still being built then.
        self._processing_context = 0

    def _expand_iri(
        self,
        active_ctx: Any,
        value: Any,
        base: Any = None,
        vocab: bool = False,
        local_ctx: Any = None,
        defined: Any = None,
    ) -> Any:
        # Only outside context processing: then every active context is a frozen dict whose
        # _uuid is unique to its content, so (uuid, value, base, vocab) determines the result.
        uuid = active_ctx.get("_uuid") if self._memoize else None
        if (
            uuid is None
            or local_ctx is not None
            or defined is not None
            or self._processing_context
            or not isinstance(value, str)
        ):
            return super()._expand_iri(active_ctx, value, base, vocab, local_ctx, defined)
        key = (uuid, value, base, vocab)
        try:
            return _EXPANDED_IRIS[key]
        except KeyError:
            pass
        result = super()._expand_iri(active_ctx, value, base, vocab, local_ctx, defined)
        if len(_EXPANDED_IRIS) >= _EXPANDED_IRIS_MAX:
            _EXPANDED_IRIS.clear()
        _EXPANDED_IRIS[key] = result
        return result

    def expand(self, input_: Any, options: Any) -> Any:
        # normalize() and to_rdf() expand through this method exactly once.
        expanded = super().expand(input_, options)
        if self._safe:
            _check_expanded(input_, expanded, self._dropped)
        return expanded

    def expand_object(self, document: Mapping[str, Any]) -> list[Any]:
        """expand() for an in-memory JSON object, without pyld's defensive deep copy of it.

        pyld's expansion builds new objects and leaves its input alone (expanded @json values
        are shared with the input; nothing here modifies them), so the copy only costs time.
        """
        options = {
            **_options(),
            "isFrame": False,
            "keepFreeFloatingNodes": False,
            "extractAllScripts": False,
        }
        active_ctx = self._get_initial_context(options)
        expanded = self._expand(active_ctx, None, document, options, inside_list=False)
        if isinstance(expanded, dict) and "@graph" in expanded and len(expanded) == 1:
            expanded = expanded["@graph"]
        elif expanded is None:
            expanded = []
        result: list[Any] = expanded if isinstance(expanded, list) else [expanded]
        if self._safe and (self._dropped or not self.defer_walk):
            _check_expanded(document, result, self._dropped)
        return result

    def _process_context(
        self,
        active_ctx: Any,
        local_ctx: Any,
        options: Any,
        override_protected: bool = False,
        propagate: bool = True,
        validate_scoped: bool = True,
        cycles: Any = None,
    ) -> Any:
        uuid = active_ctx.get("_uuid")
        key: tuple[Any, ...] | None = None
        if self._memoize and uuid is not None and not cycles:
            try:
                local_key = json.dumps(local_ctx, sort_keys=True)
            except (TypeError, ValueError):
                local_key = None
            if local_key is not None:
                key = (
                    uuid,
                    local_key,
                    override_protected,
                    propagate,
                    validate_scoped,
                    options.get("base"),
                    options.get("processingMode"),
                )
                cached = _PROCESSED_CONTEXTS.get(key)
                if cached is not None:
                    return cached
        self._processing_context += 1
        try:
            result = super()._process_context(
                active_ctx,
                local_ctx,
                options,
                override_protected,
                propagate,
                validate_scoped,
                cycles,
            )
        finally:
            self._processing_context -= 1
        if key is not None:
            _PROCESSED_CONTEXTS[key] = result
        return result


def _options() -> dict[str, Any]:
    return {
        # No document base: relative IRIs stay relative (and are caught by the safe-mode check)
        # instead of being resolved against pyld's made-up http://example.org/base/.
        "base": None,
        "processingMode": "json-ld-1.1",
        "documentLoader": load_document,
        "contextResolver": ContextResolver(_RESOLVED_CONTEXTS, load_document),
        "algorithm": "URDNA2015",
        "format": "application/n-quads",
    }


def _reraise(error: Exception) -> DocumentError:
    """Turn a pyld error into a DocumentError, surfacing the root cause."""
    cause: BaseException | None = error
    deepest: BaseException = error
    while cause is not None:
        if isinstance(cause, DocumentError):
            return cause
        deepest = cause
        cause = cause.__cause__
    message = str(deepest.args[0]) if deepest.args else str(deepest)
    code = getattr(deepest, "code", None)
    details = getattr(deepest, "details", None)
    if code:
        message += f" ({code})"
    if details:
        message += f": {details}"
    return DocumentError(f"invalid JSON-LD: {message}")


def _require_object(document: Any) -> None:
    if not isinstance(document, Mapping):
        raise DocumentError(f"a JSON-LD document must be a JSON object, not {type(document)}")


# The processor and options badges.ldquads works with: it only asks them to expand IRIs and
# process contexts (memoized above), never to expand a document, so they keep no state of one.
_DIRECT: tuple[_Processor, dict[str, Any]] | None = None


def _direct_statements(document: Mapping[str, Any]) -> rdfc.Statements:
    """The document's RDF statements by badges.ldquads, or rdfc.Unsupported. Call under _LOCK."""
    global _DIRECT
    if _DIRECT is None:
        _DIRECT = (_Processor(safe=True), _options())
    processor, options = _DIRECT
    return ldquads.statements(
        document,
        _LDQUADS_CONTEXTS,
        processor._get_initial_context(options),
        processor._expand_iri,
        processor._process_context,
        options,
    )


def _direct(document: Mapping[str, Any]) -> str:
    """Canonical N-Quads by badges.ldquads and badges.rdfc, or rdfc.Unsupported."""
    return rdfc.canonical_statements(_direct_statements(document))


_fast_path_failures = 0


def fast_path_failures() -> int:
    """How many canonicalizations in this process the fast path (badges.ldquads) failed with an
    unexpected exception, each then done the longer way (logged as
    `jsonld.fast_path_failed`). Anything but 0 is a fault in the fast path to report."""
    return _fast_path_failures


def _fast_path_failed(error: Exception) -> None:
    """Count and log an unexpected exception of the fast path: its type and where it was raised
    (module, function, line), never its message or the document, which may hold a person's
    data."""
    global _fast_path_failures
    _fast_path_failures += 1
    frames = traceback.extract_tb(error.__traceback__)
    where = (
        f"{Path(frames[-1].filename).stem}.{frames[-1].name}:{frames[-1].lineno}"
        if frames
        else "unknown"
    )
    log.error(
        "jsonld.fast_path_failed",
        error=type(error).__name__,
        where=where,
        failures=_fast_path_failures,
    )


def canonicalize(document: Mapping[str, Any], *, safe: bool = True) -> str:
    """RDFC-1.0 (URDNA2015) canonical N-Quads of a JSON-LD document, contexts from the bundle.

    With safe=True (the default) the document is first checked like
    ensure_all_terms_defined(), in the same expansion pass.
    """
    _require_object(document)
    with _LOCK:
        try:
            if safe:
                # The usual credential: its statements straight from the document, taking
                # every decision as pyld's expansion would (badges.ldquads), then RDFC-1.0.
                # Anything it does not accept takes the longer ways below.
                try:
                    return _direct(document)
                except (rdfc.Unsupported, DocumentError, _pyld.JsonLdError):
                    pass  # a shape it leaves to the ways below, or an error they report
                except Exception as error:
                    _fast_path_failed(error)  # a fault in the fast path: told, then the ways below
                # One expansion (with the safe-mode check), then the RDF conversion and
                # RDFC-1.0 done directly on the expanded form; pyld's to_rdf and URDNA2015 take
                # longer than the expansion itself. Anything unusual goes the general way.
                # Dropped terms are checked right after expansion; the walk for relative IRIs
                # and undefined types is only needed when badges.rdfc does not accept the
                # expanded form, as it refuses everything that walk would report.
                processor = _Processor(safe=True)
                processor.defer_walk = True
                expanded = processor.expand_object(document)
                try:
                    return rdfc.canonical_nquads(expanded)
                except rdfc.Unsupported:
                    _check_expanded(document, expanded, [])
            result = _Processor(safe=False).normalize(dict(document), _options())
        except UnsafeDocumentError:
            raise
        except Exception as error:
            raise _reraise(error) from error
    return str(result)


def ensure_all_terms_defined(document: Mapping[str, Any]) -> None:
    """JSON-LD safe mode: raise if expansion would drop or mangle any part of the document.

    Raises UndefinedTermError for properties that expansion drops (terms the @context does not
    define, at any depth) and for type names that are not defined; RelativeIriError for ids that
    are not absolute IRIs (RDF conversion drops them); DocumentError for invalid JSON-LD or a
    context that is not bundled.
    """
    _require_object(document)
    with _LOCK:
        try:
            _Processor(safe=True).expand_object(document)
        except UnsafeDocumentError:
            raise
        except Exception as error:
            raise _reraise(error) from error


# ---------------------------------------------------------------------------------------------
# Safe-mode check of the expanded form.

_LITERAL_KEYS: Final = frozenset({"@value", "@language", "@direction", "@index"})


def _check_expanded(original: Any, expanded: Any, dropped: list[str | None]) -> None:
    undefined: list[str] = []
    for term in dropped:
        if term is None:
            # pyld reports unknown "@..." keys and terms mapped to null without their name.
            names = _unknown_keywords(original) or ["(a term the @context maps to null)"]
        else:
            names = [term]
        for name in names:
            if name not in undefined:
                undefined.append(name)
    relative: list[str] = []
    _walk_expanded(expanded, undefined, relative)
    if undefined:
        locations: list[str] = []
        for term in undefined:
            _find_locations(original, term, "", locations)
        raise UndefinedTermError(undefined, locations[:10])
    if relative:
        raise RelativeIriError(relative)


def _walk_expanded(node: Any, undefined: list[str], relative: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk_expanded(item, undefined, relative)
        return
    if not isinstance(node, dict):
        return
    is_value = "@value" in node
    for key, value in node.items():
        if key == "@id":
            if isinstance(value, str) and not _is_absolute_or_blank(value):
                if value not in relative:
                    relative.append(value)
        elif key == "@type":
            for type_ in value if isinstance(value, list) else [value]:
                if not isinstance(type_, str) or _is_absolute_or_blank(type_):
                    continue
                if is_value and type_ == "@json":
                    continue
                if type_ not in undefined:
                    undefined.append(type_)
        elif key in _LITERAL_KEYS:
            continue
        else:
            _walk_expanded(value, undefined, relative)


def _unknown_keywords(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, list):
        for item in node:
            found.extend(_unknown_keywords(item))
    elif isinstance(node, Mapping):
        for key, value in node.items():
            if key == "@context":
                continue
            if isinstance(key, str) and key.startswith("@") and key not in _pyld.KEYWORDS:
                found.append(key)
            found.extend(_unknown_keywords(value))
    return found


def _find_locations(node: Any, name: str, path: str, out: list[str]) -> None:
    """Where name occurs in the original document, as a key or as a type value."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _find_locations(item, name, f"{path}[{index}]", out)
        return
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        if key == "@context":
            continue
        child = f"{path}.{key}" if path else str(key)
        if key == name:
            out.append(child)
        elif key in ("type", "@type") and (
            value == name or (isinstance(value, list) and name in value)
        ):
            out.append(child)
        _find_locations(value, name, child, out)
