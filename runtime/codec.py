"""Payload encryption: an AES-256-GCM Temporal PayloadCodec with key ids for rotation."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from runtime.errors import StackError
from runtime.settings import Settings

#: The `encoding` metadata of an encrypted payload.
ENCODING: Final = b"binary/encrypted"
#: The metadata entry naming the key a payload was encrypted with.
KEY_ID_METADATA: Final = "encryption-key-id"
KEY_SIZE: Final = 32  # AES-256
NONCE_SIZE: Final = 12  # the GCM standard nonce
_KEY_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CodecError(Exception):
    """A payload cannot be decrypted; the message says why and what to change."""


class UnknownKeyError(CodecError):
    """A payload was encrypted with a key this codec does not have."""


class CodecConfigError(StackError):
    """The codec settings are wrong; the message names the setting to fix."""


def new_key() -> str:
    """A fresh key for INTERNFLOW_CODEC_KEYS: 32 random bytes, base64."""
    return base64.b64encode(os.urandom(KEY_SIZE)).decode("ascii")


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the current key (AES-256-GCM, random 96-bit nonce, the key id as
    associated data) and decrypts payloads made with any key it knows. Payloads that are not
    `binary/encrypted` pass through decoding unchanged, so histories from before encryption was
    turned on still read."""

    def __init__(self, keys: Mapping[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise CodecConfigError(
                f"the current codec key {current_key_id!r} is not among the keys "
                f"({', '.join(sorted(keys)) or 'none'})"
            )
        for key_id, key in keys.items():
            if not _KEY_ID.match(key_id):
                raise CodecConfigError(
                    f"codec key id {key_id!r} is not usable: use 1-64 letters, digits, . _ -"
                )
            if len(key) != KEY_SIZE:
                raise CodecConfigError(
                    f"codec key {key_id!r} has {len(key)} bytes; it must be {KEY_SIZE} "
                    "(base64 of 32 random bytes)"
                )
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current_key_id = current_key_id

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.current_key_id.encode()
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._ciphers[self.current_key_id].encrypt(
            nonce, payload.SerializeToString(), key_id
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA, b"")
        key_id = raw_id.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(
                f"a payload is encrypted with codec key {key_id!r}, which is not configured "
                f"(known: {', '.join(self.key_ids)}): add that key to INTERNFLOW_CODEC_KEYS"
            )
        nonce, sealed = payload.data[:NONCE_SIZE], payload.data[NONCE_SIZE:]
        try:
            plain = cipher.decrypt(nonce, sealed, raw_id)
        except InvalidTag:
            raise CodecError(
                f"a payload marked as encrypted with codec key {key_id!r} does not decrypt with "
                "it: the key under that id was changed, or the payload was altered"
            ) from None
        return Payload.FromString(plain)


def _decode_key(key_id: str, value: object, source: str) -> bytes:
    if not isinstance(value, str):
        raise CodecConfigError(f"{source}: key {key_id!r} must be a base64 string")
    try:
        # Standard or URL-safe alphabet, padded.
        return base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise CodecConfigError(
            f"{source}: key {key_id!r} is not base64 (make one with "
            '`python -c "from runtime.codec import new_key; print(new_key())"`)'
        ) from None


def parse_keys(text: str, source: str) -> dict[str, bytes]:
    """The keys in `{"<key id>": "<base64>", ...}`; `source` names where the text came from."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise CodecConfigError(
            f'{source} is not JSON: write {{"<key id>": "<base64 of 32 bytes>"}}'
        ) from None
    if not isinstance(data, dict) or not data:
        raise CodecConfigError(
            f'{source} must be a non-empty JSON object {{"<key id>": "<base64 of 32 bytes>"}}'
        )
    return {str(key_id): _decode_key(str(key_id), value, source) for key_id, value in data.items()}


def codec_configured(settings: Settings) -> bool:
    """Whether payload encryption keys are configured (codec_from_settings checks them)."""
    inline = settings.codec_keys
    return (
        inline is not None and bool(inline.get_secret_value().strip())
    ) or settings.codec_keys_file is not None


def codec_from_settings(settings: Settings) -> EncryptionCodec | None:
    """The codec the settings ask for, or None when no keys are configured (encryption off).
    Empty values count as unset (compose passes `${VAR:-}` through as "")."""
    inline = settings.codec_keys
    if inline is not None and not inline.get_secret_value().strip():
        inline = None
    current = settings.codec_key_id or None
    if inline is not None and settings.codec_keys_file is not None:
        raise CodecConfigError(
            "set either INTERNFLOW_CODEC_KEYS or INTERNFLOW_CODEC_KEYS_FILE, not both"
        )
    if inline is not None:
        keys = parse_keys(inline.get_secret_value(), "INTERNFLOW_CODEC_KEYS")
    elif settings.codec_keys_file is not None:
        source = f"INTERNFLOW_CODEC_KEYS_FILE ({settings.codec_keys_file})"
        try:
            text = settings.codec_keys_file.read_text(encoding="utf-8")
        except OSError as error:
            raise CodecConfigError(f"cannot read {source}: {error.strerror}") from None
        keys = parse_keys(text, source)
    else:
        if current is not None:
            raise CodecConfigError(
                "INTERNFLOW_CODEC_KEY_ID is set but there are no keys: set INTERNFLOW_CODEC_KEYS"
            )
        return None
    if current is None:
        if len(keys) != 1:
            raise CodecConfigError(
                f"there are {len(keys)} codec keys ({', '.join(sorted(keys))}): set "
                "INTERNFLOW_CODEC_KEY_ID to the one that encrypts new payloads"
            )
        current = next(iter(keys))
    if current not in keys:
        raise CodecConfigError(
            f"INTERNFLOW_CODEC_KEY_ID={current!r} is not among the codec keys "
            f"({', '.join(sorted(keys))})"
        )
    return EncryptionCodec(keys, current)
