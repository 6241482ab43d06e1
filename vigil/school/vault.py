"""Encryption at rest for camera credentials (Fernet, key kept in the data directory)."""

from __future__ import annotations

import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class CredentialKeyError(RuntimeError):
    pass


@lru_cache(maxsize=1)
def _fernet() -> Fernet:
    path = settings.PATHS.keys / "credentials.key"
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_bytes().strip()
        else:
            try:
                os.write(fd, key)
                os.fsync(fd)
            finally:
                os.close(fd)
    return Fernet(key)


def encrypt(secret: str) -> bytes:
    return _fernet().encrypt(secret.encode("utf-8"))


def decrypt(token: bytes) -> str:
    try:
        return _fernet().decrypt(bytes(token)).decode("utf-8")
    except InvalidToken as exc:
        raise CredentialKeyError(
            "a camera password cannot be decrypted with this installation's key "
            f"({settings.PATHS.keys / 'credentials.key'})"
        ) from exc
