"""Check the relative links of the documentation: every link to a file of the repository names a
file or folder that exists, and every `#anchor` names a heading (or an explicit anchor) of the
Markdown file it points into, as GitHub computes heading anchors.

Checked: README.md, every Markdown file under docs/, and bench/README.md. Links to other sites
(`https:`, `mailto:`, ...) are not fetched. Run by `make lint`:

    python deploy/check_links.py [ROOT]

Prints one line per broken link (`file:line: ...`) and exits 1 when there is any, 0 otherwise.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

#: The documentation whose links are checked, relative to the repository's root.
DOCUMENTS = ("README.md", "docs/**/*.md", "bench/README.md")

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
# [text](target "title"), and ![alt](target); the text may hold one level of brackets.
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
)
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ANCHOR = re.compile(r"<a\s[^>]*?(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
HTML_HREF = re.compile(r"<a\s[^>]*?href\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


class Link(NamedTuple):
    source: Path
    line: int
    target: str


def documents(root: Path) -> list[Path]:
    found: set[Path] = set()
    for pattern in DOCUMENTS:
        found.update(path for path in root.glob(pattern) if path.is_file())
    return sorted(found)


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = FENCE.match(line)
        if fence is None:
            if opening:
                fence = opening.group(1)
                continue
            yield number, line
        elif opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
            if not line.strip().strip(fence[0]):
                fence = None


def heading_text(raw: str) -> str:
    """A heading's text as GitHub renders it: code spans keep their content, links their text,
    emphasis and HTML tags go."""
    text = CODE_SPAN.sub(lambda match: match.group(2).strip(), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return text.replace("*", "")


def slug(text: str) -> str:
    """GitHub's anchor for a heading's text: lower case, every character other than a letter, a
    digit, `_`, `-` or a space dropped, each space a `-`."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor of a Markdown file: its headings (a repeated one gets -1, -2, ...) and the
    explicit `<a id=...>` or `<a name=...>`."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(text):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading_text(heading.group(2)))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(match.group(1) for match in HTML_ANCHOR.finditer(line))
    return found


def paragraphs(text: str) -> Iterator[tuple[int, str]]:
    """Runs of non-blank prose lines, each with the number of its first line: a link's text may
    wrap onto the next line."""
    run: list[tuple[int, str]] = []
    for number, line in prose_lines(text):
        if run and (not line.strip() or number != run[-1][0] + 1):
            yield run[0][0], "\n".join(kept for _, kept in run)
            run = []
        if line.strip():
            run.append((number, line))
    if run:
        yield run[0][0], "\n".join(kept for _, kept in run)


def links(path: Path) -> Iterator[Link]:
    for first, paragraph in paragraphs(path.read_text(encoding="utf-8")):
        for offset, line in enumerate(paragraph.split("\n")):
            reference = REFERENCE.match(line)
            if reference:
                yield Link(path, first + offset, reference.group(1).strip("<>"))
        # Code spans become blanks of their length, so that offsets still give line numbers.
        prose = CODE_SPAN.sub(lambda match: re.sub(r"[^\n]", " ", match.group(0)), paragraph)
        found = [(m.start(), m.group(1).strip("<>")) for m in INLINE_LINK.finditer(prose)]
        found += [(m.start(), m.group(1)) for m in HTML_HREF.finditer(prose)]
        for start, target in sorted(found):
            yield Link(path, first + prose.count("\n", 0, start), target)


def problem(link: Link, root: Path, cache: dict[Path, set[str]]) -> str | None:
    """What is wrong with a link, or None when it leads somewhere."""
    target = link.target
    if not target or SCHEME.match(target) or target.startswith("//"):
        return None
    location, _, fragment = target.partition("#")
    location = unquote(location.split("?", 1)[0])
    if location.startswith("/"):
        destination = (root / location.lstrip("/")).resolve()
    elif location:
        destination = (link.source.parent / location).resolve()
    else:
        destination = link.source.resolve()
    if destination != root and root not in destination.parents:
        return "leads outside the repository"
    if not destination.exists():
        return "no such file or folder"
    if not fragment or destination.suffix.lower() != ".md" or not destination.is_file():
        return None
    if destination not in cache:
        cache[destination] = anchors(destination.read_text(encoding="utf-8"))
    if unquote(fragment) not in cache[destination]:
        return f"no heading with the anchor #{fragment} in {destination.relative_to(root)}"
    return None


def check(root: Path) -> list[str]:
    """One line per broken link in the documentation under `root`."""
    root = root.resolve()
    cache: dict[Path, set[str]] = {}
    broken = []
    for document in documents(root):
        for link in links(document):
            why = problem(link, root, cache)
            if why:
                where = document.relative_to(root)
                broken.append(f"{where}:{link.line}: broken link ({link.target}): {why}")
    return broken


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent
    broken = check(root)
    for line in broken:
        print(line)
    if broken:
        print(f"{len(broken)} broken link(s) in the documentation", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
