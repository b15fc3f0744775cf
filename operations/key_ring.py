"""The key ring as the API publishes it, loaded again only when its files change.

Loading a key ring parses every private key in it (an RSA key takes tens of milliseconds), and
every verifier reads the issuer profile, the keys, the DID document or the JWKS built from it:
so the ring is kept, with the name, size and modification time of each key file, and loaded
anew as soon as any of them differs (a rotation adds a file; a restored backup changes them)."""

from __future__ import annotations

import threading
from pathlib import Path

from badges.keyring import KeyRing

_lock = threading.Lock()
_kept: dict[Path, tuple[tuple[tuple[str, int, int], ...], KeyRing]] = {}


def _files(key_dir: Path) -> tuple[tuple[str, int, int], ...]:
    found = []
    for path in sorted(key_dir.glob("*.pem")) if key_dir.is_dir() else []:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        found.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def current_ring(key_dir: Path) -> KeyRing:
    """KeyRing.load(key_dir), from memory while the key files are those it was loaded from."""
    key_dir = Path(key_dir)
    files = _files(key_dir)
    with _lock:
        kept = _kept.get(key_dir)
        if kept is not None and kept[0] == files:
            return kept[1]
    ring = KeyRing.load(key_dir)
    with _lock:
        _kept[key_dir] = (files, ring)
    return ring
