"""Password hashing for the team (scrypt), and session token hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

# scrypt's cost, as current guidance (OWASP's password storage cheat sheet) sets it: N = 2^17, r = 8, p = 1,
# about 128 MiB and a few hundred milliseconds a hash. Hashes made with a lower cost are upgraded at sign-in.
SCRYPT = {"n": 2 ** 17, "r": 8, "p": 1}


def hash_password(password: str, *, salt: bytes | None = None, n: int | None = None, r: int | None = None,
                  p: int | None = None) -> str:
    n, r, p = n or SCRYPT["n"], r or SCRYPT["r"], p or SCRYPT["p"]
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=_maxmem(n, r, p))
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def _maxmem(n: int, r: int, p: int) -> int:
    return 128 * n * r * p + 16 * 1024 * 1024


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        n_, r_, p_ = int(n), int(r), int(p)
    except ValueError:
        return False
    if scheme != "scrypt" or n_ > 2 ** 20 or r_ > 32 or p_ > 16:
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=n_, r=r_, p=p_, dklen=32,
                         maxmem=_maxmem(n_, r_, p_))
    return hmac.compare_digest(got.hex(), digest)


def needs_rehash(stored: str) -> bool:
    """True when a hash was made with less than today's cost."""
    try:
        _, n, r, p, _, _ = stored.split("$")
        return (int(n), int(r), int(p)) < (SCRYPT["n"], SCRYPT["r"], SCRYPT["p"])
    except ValueError:
        return True


def _dummy_hash() -> str:
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}$" + "00" * 16 + "$" + "00" * 32


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
