"""Client-certificate expiry: read a PEM certificate's validity and warn ahead of expiry.

No dependency beyond the standard library: the validity dates sit at a fixed place in the DER
structure of every X.509 certificate (RFC 5280 §4.1), so a few lines of DER walking read them on a
gateway that has neither openssl nor the `cryptography` package. Nothing here verifies a signature;
the TLS handshake does that. This module only tells operations, weeks ahead, that a certificate is
about to lock the gateway out of the broker.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

__all__ = [
    "CertificateError",
    "CertificateInfo",
    "ExpiryNotice",
    "check_expiry",
    "expiry_warning",
    "read_certificate",
]

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL)

_SEQUENCE = 0x30
_SET = 0x31
_INTEGER = 0x02
_OID = 0x06
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_VERSION = 0xA0  # [0] EXPLICIT
_CN_OID = bytes([0x55, 0x04, 0x03])  # 2.5.4.3 commonName
_STRING_TAGS = {0x0C, 0x13, 0x14, 0x16, 0x1E}  # UTF8, Printable, Teletex, IA5, BMP strings


class CertificateError(ValueError):
    """The file cannot be read or holds no parseable X.509 certificate."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    path: str
    subject_cn: str | None
    not_before: datetime  # aware, UTC
    not_after: datetime  # aware, UTC

    def days_left(self, now: datetime | None = None) -> float:
        return (self.not_after - _utc(now)).total_seconds() / 86400


@dataclass(frozen=True, slots=True)
class ExpiryNotice:
    level: Literal["warning", "error"]  # error: expired or not yet valid, the broker will refuse it
    message: str
    info: CertificateInfo


def read_certificate(path: str | os.PathLike[str]) -> CertificateInfo:
    """Validity and subject CN of the first certificate in a PEM (or DER) file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise CertificateError(f"cannot read certificate {p}: {err.strerror}") from err
    match = _PEM.search(data)
    if match is not None:
        try:
            der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
        except binascii.Error as err:
            raise CertificateError(f"{p}: PEM certificate block is not valid base64") from err
    elif data[:1] == bytes([_SEQUENCE]):
        der = data
    else:
        raise CertificateError(f"{p}: no certificate found (expected a PEM '-----BEGIN CERTIFICATE-----' block)")
    try:
        not_before, not_after, cn = _parse(der)
    except (IndexError, ValueError) as err:
        raise CertificateError(f"{p}: not a valid X.509 certificate ({err})") from err
    return CertificateInfo(str(p), cn, not_before, not_after)


def check_expiry(
    path: str | os.PathLike[str], warn_days: float = 30, now: datetime | None = None
) -> ExpiryNotice | None:
    """None while the certificate is valid for more than `warn_days`; otherwise what to log.

    Raises CertificateError when the file is unreadable or not a certificate.
    """
    info = read_certificate(path)
    current = _utc(now)
    name = f"client certificate {info.path}" + (f" (CN={info.subject_cn})" if info.subject_cn else "")
    until = info.not_after.strftime("%Y-%m-%d %H:%M UTC")
    if current >= info.not_after:
        days = (current - info.not_after).total_seconds() / 86400
        ago = f"{days:.0f} days ago" if days >= 1 else "less than a day ago"
        return ExpiryNotice(
            "error",
            f"{name} expired on {until} ({ago}); the broker will refuse the connection until it is renewed",
            info,
        )
    if current < info.not_before:
        since = info.not_before.strftime("%Y-%m-%d %H:%M UTC")
        return ExpiryNotice(
            "error",
            f"{name} is not valid before {since} but the gateway clock says "
            f"{current.strftime('%Y-%m-%d %H:%M UTC')}; check the clock (NTP)",
            info,
        )
    left = info.days_left(current)
    if left <= warn_days:
        when = f"in {left:.0f} days" if left >= 1 else "in less than a day"
        return ExpiryNotice("warning", f"{name} expires {when}, on {until}; renew it before then", info)
    return None


def expiry_warning(path: str | os.PathLike[str], warn_days: float = 30, now: datetime | None = None) -> str | None:
    """The text of check_expiry(): a warning within `warn_days`, an error text once expired."""
    notice = check_expiry(path, warn_days, now)
    return None if notice is None else notice.message


# -- DER ----------------------------------------------------------------------------------------


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `pos`."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    end = pos + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, pos, end


def _expect(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    found, start, end = _tlv(data, pos)
    if found != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x}, found 0x{found:02x}")
    return start, end


def _parse(der: bytes) -> tuple[datetime, datetime, str | None]:
    cert_start, _ = _expect(der, 0, _SEQUENCE)
    pos, _ = _expect(der, cert_start, _SEQUENCE)  # tbsCertificate
    if der[pos] == _VERSION:
        pos = _tlv(der, pos)[2]
    pos = _expect(der, pos, _INTEGER)[1]  # serialNumber
    pos = _expect(der, pos, _SEQUENCE)[1]  # signature algorithm
    pos = _expect(der, pos, _SEQUENCE)[1]  # issuer
    validity, validity_end = _expect(der, pos, _SEQUENCE)
    not_before, after_pos = _time(der, validity)
    not_after, _ = _time(der, after_pos)
    subject_start, subject_end = _expect(der, validity_end, _SEQUENCE)
    return not_before, not_after, _common_name(der, subject_start, subject_end)


def _time(data: bytes, pos: int) -> tuple[datetime, int]:
    tag, start, end = _tlv(data, pos)
    text = data[start:end].decode("ascii")
    if tag == _UTC_TIME:  # YYMMDDHHMMSSZ; RFC 5280: YY >= 50 is 19YY
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise ValueError(f"expected a time, found DER tag 0x{tag:02x}")
    if not text.endswith("Z") or len(text) != 15:
        raise ValueError(f"unsupported time format {text!r}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC), end


def _common_name(data: bytes, pos: int, end: int) -> str | None:
    while pos < end:  # Name: SEQUENCE OF SET OF SEQUENCE { OID, value }
        set_start, set_end = _expect(data, pos, _SET)
        inner = set_start
        while inner < set_end:
            atv_start, atv_end = _expect(data, inner, _SEQUENCE)
            oid_start, oid_end = _expect(data, atv_start, _OID)
            if data[oid_start:oid_end] == _CN_OID:
                tag, v_start, v_end = _tlv(data, oid_end)
                if tag in _STRING_TAGS:
                    raw = data[v_start:v_end]
                    return raw.decode("utf-16-be" if tag == 0x1E else "utf-8", errors="replace")
            inner = atv_end
        pos = set_end
    return None
