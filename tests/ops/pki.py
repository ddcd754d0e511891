"""Real certificates for the TLS tests, made with the openssl command line (test machines only).

`openssl ca` is used for every leaf certificate because it is the only OpenSSL 3.0 command that
sets an arbitrary validity window (an expired certificate, one that expires in a few days).
Keys are EC P-256: quick to generate on a small machine.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

OPENSSL = shutil.which("openssl")

_CA_CONF = """\
[ca]
default_ca = test_ca

[test_ca]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/issued
serial = {dir}/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
email_in_dn = no

[any]
commonName = supplied

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
"""


def _run(*args: str) -> None:
    assert OPENSSL is not None
    proc = subprocess.run([OPENSSL, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class CertificateAuthority:
    def __init__(self, directory: Path, name: str) -> None:
        if OPENSSL is None:
            pytest.fail("the openssl command is needed to make test certificates (scripts/test installs it)")
        self.dir = directory
        self.name = name
        (directory / "issued").mkdir(parents=True)
        (directory / "index.txt").write_text("")
        (directory / "serial").write_text("1000\n")
        self.conf = directory / "ca.cnf"
        self.conf.write_text(_CA_CONF.format(dir=directory))
        self.cert = directory / "ca.pem"
        self.key = directory / "ca.key"
        _run(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(self.key), "-out", str(self.cert), "-days", "3650", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip

    def issue(
        self,
        cn: str,
        *,
        kind: str = "client",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> Issued:
        now = datetime.now(UTC)
        start = not_before or now - timedelta(hours=1)
        end = not_after or now + timedelta(days=365)
        key, csr, cert = (self.dir / f"{cn}.{ext}" for ext in ("key", "csr", "pem"))
        _run(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}",
        )  # fmt: skip
        _run(
            "ca", "-batch", "-notext", "-config", str(self.conf), "-extensions", kind,
            "-cert", str(self.cert), "-keyfile", str(self.key),
            "-startdate", _stamp(start), "-enddate", _stamp(end),
            "-in", str(csr), "-out", str(cert),
        )  # fmt: skip
        return Issued(cert, key)


@dataclass(frozen=True)
class Pki:
    """Everything the TLS tests need: two CAs and the certificates they issued."""

    dir: Path
    ca: CertificateAuthority
    other_ca: CertificateAuthority
    server: Issued
    client: Issued
    expired: Issued
    foreign: Issued  # a client certificate issued by other_ca

    def mosquitto_listener(self) -> str:
        """Lines for LocalBroker(extra_conf=...): the TLS settings of its listener."""
        return (
            f"cafile {self.ca.cert}\n"
            f"certfile {self.server.cert}\n"
            f"keyfile {self.server.key}\n"
            "require_certificate true\n"
            "tls_version tlsv1.2\n"
        )


def make_test_pki(directory: Path) -> Pki:
    """A PKI under `directory`, readable by the mosquitto user (mosquitto drops root privileges)."""
    now = datetime.now(UTC)
    ca = CertificateAuthority(directory / "ca", "edge-agent test CA")
    other = CertificateAuthority(directory / "other-ca", "some other CA")
    pki = Pki(
        dir=directory,
        ca=ca,
        other_ca=other,
        server=ca.issue("broker", kind="server"),
        client=ca.issue("gw-test-01"),
        expired=ca.issue("gw-expired", not_before=now - timedelta(days=400), not_after=now - timedelta(days=3)),
        foreign=other.issue("gw-foreign"),
    )
    directory.chmod(0o755)
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # test keys only
    return pki


class TlsSubscriber:
    """A real MQTT client over TLS with its own client certificate, recording readings."""

    def __init__(self, port: int, ca: Path, identity: Issued, topic: str, client_id: str = "tls-test-sub") -> None:
        self.readings: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.tls_set(ca_certs=str(ca), certfile=str(identity.cert), keyfile=str(identity.key))
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise AssertionError("TLS subscriber did not get SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if "/readings/" in msg.topic:
            with self._lock:
                self.readings.extend(orjson.loads(msg.payload)["readings"])

    def seqs(self) -> list[int]:
        with self._lock:
            return [r["seq"] for r in self.readings]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
