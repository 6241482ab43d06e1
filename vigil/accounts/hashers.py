"""Argon2id with OWASP ASVS 5.0 parameters (19 MiB, 2 iterations, 1 lane)."""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class VigilArgon2PasswordHasher(Argon2PasswordHasher):
    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1
