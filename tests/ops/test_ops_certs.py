"""Client-certificate expiry read from real certificates, checked against openssl's own reading."""

from __future__ import annotations

import base64
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.certs import CertificateError, check_expiry, expiry_warning, read_certificate
from tests.ops.pki import OPENSSL, CertificateAuthority, Issued

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("certs") / "ca", "certs test CA")


@pytest.fixture(scope="module")
def year(ca: CertificateAuthority) -> Issued:
    return ca.issue("gw-year", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=365))


@pytest.fixture(scope="module")
def near(ca: CertificateAuthority) -> Issued:
    return ca.issue("gw-near", not_before=NOW - timedelta(days=300), not_after=NOW + timedelta(days=10, hours=1))


@pytest.fixture(scope="module")
def expired(ca: CertificateAuthority) -> Issued:
    return ca.issue("gw-expired", not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=3))


def _openssl_dates(cert: Path) -> tuple[datetime, datetime]:
    assert OPENSSL is not None
    out = subprocess.run(
        [OPENSSL, "x509", "-in", str(cert), "-noout", "-startdate", "-enddate", "-dateopt", "iso_8601"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = dict(re.findall(r"(notBefore|notAfter)=(\S+ \S+)", out))

    def parse(text: str) -> datetime:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC)

    return parse(found["notBefore"]), parse(found["notAfter"])


def test_dates_and_subject_match_openssl(year: Issued, ca: CertificateAuthority) -> None:
    for path, cn in ((year.cert, "gw-year"), (ca.cert, "certs test CA")):
        info = read_certificate(path)
        assert (info.not_before, info.not_after) == _openssl_dates(path)
        assert info.subject_cn == cn
        assert info.path == str(path)


def test_generalized_time_after_2049(ca: CertificateAuthority) -> None:
    # RFC 5280: from 2050 on validity dates are GeneralizedTime, before that UTCTime.
    cert = ca.issue(
        "gw-long",
        not_before=datetime(1999, 12, 31, 23, 0, tzinfo=UTC),
        not_after=datetime(2051, 6, 1, 12, 30, 5, tzinfo=UTC),
    )
    info = read_certificate(cert.cert)
    assert info.not_before == datetime(1999, 12, 31, 23, 0, tzinfo=UTC)
    assert info.not_after == datetime(2051, 6, 1, 12, 30, 5, tzinfo=UTC)
    assert (info.not_before, info.not_after) == _openssl_dates(cert.cert)


def test_valid_for_long_no_warning(year: Issued) -> None:
    assert expiry_warning(year.cert) is None
    assert check_expiry(year.cert, warn_days=30) is None


def test_warning_within_warn_days(near: Issued) -> None:
    notice = check_expiry(near.cert, warn_days=30)
    assert notice is not None and notice.level == "warning"
    assert "expires in 10 days" in notice.message
    assert "CN=gw-near" in notice.message and str(near.cert) in notice.message
    assert expiry_warning(near.cert, warn_days=30) == notice.message
    assert expiry_warning(near.cert, warn_days=7) is None


def test_warning_follows_the_clock_given(year: Issued) -> None:
    info = read_certificate(year.cert)
    assert expiry_warning(year.cert, now=info.not_after - timedelta(days=31)) is None
    text = expiry_warning(year.cert, now=info.not_after - timedelta(days=2, hours=1))
    assert text is not None and "expires in 2 days" in text
    text = expiry_warning(year.cert, now=info.not_after - timedelta(hours=5))
    assert text is not None and "in less than a day" in text
    # A naive datetime is taken as UTC.
    naive = (info.not_after - timedelta(days=3)).replace(tzinfo=None)
    text = expiry_warning(year.cert, now=naive)
    assert text is not None and "expires in 3 days" in text


def test_expired_is_an_error(expired: Issued) -> None:
    notice = check_expiry(expired.cert)
    assert notice is not None and notice.level == "error"
    assert "expired on" in notice.message and "3 days ago" in notice.message
    assert "refuse" in notice.message
    assert expiry_warning(expired.cert) == notice.message


def test_not_yet_valid_points_at_the_clock(year: Issued) -> None:
    # A gateway without a battery-backed clock that boots in 1970 until NTP answers.
    notice = check_expiry(year.cert, now=datetime(1970, 1, 1, tzinfo=UTC))
    assert notice is not None and notice.level == "error"
    assert "not valid before" in notice.message and "NTP" in notice.message


def test_chain_key_and_der_files(tmp_path: Path, near: Issued, ca: CertificateAuthority) -> None:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(near.cert.read_bytes() + ca.cert.read_bytes())
    assert read_certificate(chain).subject_cn == "gw-near"  # the first certificate is the client's

    combined = tmp_path / "key-and-cert.pem"
    combined.write_bytes(near.key.read_bytes() + near.cert.read_bytes())
    assert read_certificate(combined).subject_cn == "gw-near"

    pem = near.cert.read_text()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    der = tmp_path / "cert.der"
    der.write_bytes(base64.b64decode("".join(body.split())))
    from_der, from_pem = read_certificate(der), read_certificate(near.cert)
    assert (from_der.subject_cn, from_der.not_before, from_der.not_after) == (
        "gw-near",
        from_pem.not_before,
        from_pem.not_after,
    )


def test_unreadable_or_not_a_certificate(tmp_path: Path, near: Issued) -> None:
    with pytest.raises(CertificateError, match=r"cannot read certificate .*missing\.pem"):
        read_certificate(tmp_path / "missing.pem")
    with pytest.raises(CertificateError, match="no certificate found"):
        read_certificate(near.key)  # a key, not a certificate
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nMIIBkTCB+w==\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateError, match=r"not a valid X\.509 certificate"):
        check_expiry(broken)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_certificates_fail_cleanly(tmp_path: Path, near: Issued, data: st.DataObject) -> None:
    """Truncated or corrupted DER gives a CertificateError or a reading, never another exception."""
    pem = near.cert.read_text()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    der = bytearray(base64.b64decode("".join(body.split())))
    cut = data.draw(st.integers(0, len(der)), label="truncate at")
    der = der[:cut]
    for _ in range(data.draw(st.integers(0, 4), label="corruptions")):
        if der:
            der[data.draw(st.integers(0, len(der) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "damaged.pem"
    encoded = base64.b64encode(bytes(der)).decode()
    path.write_text(f"-----BEGIN CERTIFICATE-----\n{encoded}\n-----END CERTIFICATE-----\n")
    try:
        info = read_certificate(path)
    except CertificateError:
        return
    assert info.not_before.tzinfo is UTC and info.not_after.tzinfo is UTC
