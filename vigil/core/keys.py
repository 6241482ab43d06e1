"""The site's Ed25519 signing key: signs coverage reports and evidence packages.

The private key lives in ``$VIGIL_DATA_DIR/keys/site-ed25519.pem`` (mode 0600); the
public key and its fingerprint are shown in the UI so a recipient can check signatures.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings


def key_path() -> Path:
    return Path(settings.PATHS.keys) / "site-ed25519.pem"


def ensure_site_key() -> Path:
    path = key_path()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def private_key() -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(ensure_site_key().read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise RuntimeError(f"{key_path()} is not an Ed25519 key")
    return key


def public_key() -> Ed25519PublicKey:
    return private_key().public_key()


def public_key_bytes(key: Ed25519PublicKey | None = None) -> bytes:
    return (key or public_key()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def public_key_b64() -> str:
    return base64.b64encode(public_key_bytes()).decode("ascii")


def fingerprint(raw_public: bytes | None = None) -> str:
    digest = hashlib.sha256(raw_public or public_key_bytes()).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def sign(data: bytes) -> bytes:
    return private_key().sign(data)
