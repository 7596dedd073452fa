"""Encryption of SMTP passwords at rest (Fernet, with key rotation).

``settings.FERNET_KEYS`` lists the keys newest first: the first encrypts,
every key decrypts. To rotate: put a new key in front, run
``manage.py rotate_fernet_key`` (re-encrypts every row with the first key),
then drop the old key. docs/panel.md has the steps.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class PasswordUnreadable(Exception):
    """The stored password was encrypted with a key that is no longer configured."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FERNET_KEYS))


def encrypt(raw: str) -> str:
    return fernet().encrypt(raw.encode()).decode("ascii")


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise PasswordUnreadable(
            "the stored password cannot be decrypted with the configured key(s)"
        ) from None


def readable(token: str) -> bool:
    """Whether a configured key decrypts ``token`` (an empty one is readable)."""
    try:
        decrypt(token)
    except (PasswordUnreadable, UnicodeError):
        return False
    return True


def rotate(token: str) -> str:
    """The same secret, encrypted with the newest key.

    Raises PasswordUnreadable when no configured key decrypts ``token``.
    """
    if not token:
        return token
    try:
        return fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise PasswordUnreadable(
            "the stored password cannot be decrypted with the configured key(s)"
        ) from None
