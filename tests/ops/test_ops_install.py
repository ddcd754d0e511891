"""scripts/install-gateway for real: a staging root, run twice; then as root in a private mount
namespace (useradd, ownerships, systemctl skipped because systemd is not running).

Installing the package needs its wheels. Tests use only loopback, so they install offline from a
wheelhouse made once with `scripts/install-gateway --download-wheels ~/.cache/edge-agent/wheels`
(or $EDGE_AGENT_WHEELHOUSE; scripts/test makes it) and fail without one.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install-gateway"
# What the script reads from its checkout. Others may edit the checkout while the tests run, so
# the tests install from a snapshot of it.
SOURCES = ("pyproject.toml", "README.md", "edge_agent", "drivers", "systemd", "scripts", "docs")
WHEELHOUSE = Path(os.environ.get("EDGE_AGENT_WHEELHOUSE", Path.home() / ".cache/edge-agent/wheels"))

EXAMPLE = """\
gateway:
  id: gw-dock-01
  site: dc-north
mqtt:
  host: hub.example.net
  port: 8883
  username: gw-dock-01
  password: ${credential:mqtt-password}
  tls:
    ca: /etc/edge-agent/tls/ca.pem
    cert: /etc/edge-agent/tls/client.pem
    key: ${CREDENTIALS_DIRECTORY}/tls-key
buffer:
  path: /var/lib/edge-agent/buffer.db
devices:
  - id: sim-1
    driver: simulated
    rate: 10
"""


@dataclass
class Run:
    code: int
    out: str


def run_script(*args: str | Path, script: Path = SCRIPT, timeout: float = 240) -> Run:
    proc = subprocess.run(
        [str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(proc.returncode, proc.stdout + proc.stderr)


def tree(root: Path) -> dict[str, tuple[str, int, str]]:
    """path -> (mode, size, target or content digest) for everything outside the venv's packages."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if "/site-packages/" in rel or "__pycache__" in rel or rel.startswith("usr/lib/systemd"):
            continue
        st = path.lstat()
        extra = os.readlink(path) if path.is_symlink() else ""
        if stat.S_ISREG(st.st_mode):
            extra = str(hash(path.read_bytes()))
        found[rel] = (stat.filemode(st.st_mode), st.st_size if stat.S_ISREG(st.st_mode) else 0, extra)
    return found


def test_usage_errors_are_reported(tmp_path: Path) -> None:
    assert run_script("--help").code == 0
    bad = run_script("--frobnicate")
    assert bad.code == 64 and "unknown option --frobnicate" in bad.out
    missing = run_script("--root", tmp_path, "--config-example", "/nonexistent/gateway.yaml")
    assert missing.code == 1 and "no example config at /nonexistent/gateway.yaml" in missing.out


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    if not any(WHEELHOUSE.glob("*.whl")):
        pytest.fail(
            f"no wheelhouse at {WHEELHOUSE}: run scripts/install-gateway --download-wheels {WHEELHOUSE} "
            "(scripts/test does)"
        )
    return WHEELHOUSE


@dataclass
class Staged:
    root: Path
    example: Path
    first: Run
    script: Path

    def again(self, wheelhouse: Path) -> Run:
        args = ("--root", self.root, "--config-example", self.example, "--wheels", wheelhouse)
        return run_script(*args, script=self.script)


def snapshot(target: Path) -> Path:
    """A copy of the checkout's installable parts; returns its install script."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    target.mkdir(parents=True)
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, target / name)
    return target / "scripts" / "install-gateway"


@pytest.fixture(scope="module")
def staged(wheelhouse: Path) -> Iterator[Staged]:
    work = Path(tempfile.mkdtemp(prefix="edge-agent-install-"))
    example = work / "gateway.yaml"
    example.write_text(EXAMPLE)
    root = work / "root"
    # The operator's first step on a gateway: the MQTT password into the credential store.
    (root / "etc/credstore").mkdir(parents=True, mode=0o700)
    (root / "etc/credstore/edge-agent.mqtt-password").write_text("s3cret\n")
    script = snapshot(work / "src")
    # --no-compile: no .pyc files for the whole virtualenv, which take a third of the time here.
    args = ("--root", root, "--config-example", example, "--wheels", wheelhouse, "--pip-args", "--no-compile")
    first = run_script(*args, script=script)
    try:
        yield Staged(root, example, first, script)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_staged_install(staged: Staged) -> None:
    root, out = staged.root, staged.first.out
    assert staged.first.code == 0, out
    assert "not creating the user edge-agent" in out and "not running systemctl" in out
    assert "config.yaml: OK — gateway gw-dock-01, 1 device(s) (simulated)" in out

    unit = root / "etc/systemd/system/edge-agent.service"
    assert unit.read_bytes() == (staged.script.parents[1] / "systemd/edge-agent.service").read_bytes()
    config = root / "etc/edge-agent/config.yaml"
    assert config.read_text() == EXAMPLE
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert stat.S_IMODE((root / "etc/credstore").stat().st_mode) == 0o700
    assert (root / "var/lib/edge-agent").is_dir()
    assert (root / "opt/edge-agent/docs/operations.md").is_file()

    # The console script is the one the unit starts, pointing where the tree will live.
    entry = root / "opt/edge-agent/venv/bin/edge-agent"
    assert os.access(entry, os.X_OK)
    assert entry.read_text().splitlines()[0] == "#!/opt/edge-agent/venv/bin/python"
    assert os.readlink(root / "usr/local/bin/edge-agent") == "/opt/edge-agent/venv/bin/edge-agent"
    # The installed package (not the checkout) is what the venv imports.
    where = subprocess.run(
        [root / "opt/edge-agent/venv/bin/python", "-I", "-c", "import edge_agent; print(edge_agent.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout.strip()
    assert where.startswith(str(root / "opt/edge-agent/venv/lib/"))


@pytest.mark.slow
def test_second_run_changes_nothing_and_keeps_the_config(staged: Staged, wheelhouse: Path) -> None:
    config = staged.root / "etc/edge-agent/config.yaml"
    edited = EXAMPLE.replace("rate: 10", "rate: 25") + "# edited on the gateway\n"
    config.write_text(edited)
    before = tree(staged.root)

    again = staged.again(wheelhouse)
    assert again.code == 0, again.out
    assert "is up to date with" in again.out  # no reinstall
    assert "kept the existing /etc/edge-agent/config.yaml" in again.out
    assert config.read_text() == edited
    assert tree(staged.root) == before


@pytest.mark.slow
def test_an_invalid_config_is_reported_and_kept(staged: Staged, wheelhouse: Path) -> None:
    config = staged.root / "etc/edge-agent/config.yaml"
    saved = config.read_text()
    broken = EXAMPLE.replace("rate: 10", "rate: 10\n    rtae: 5")
    config.write_text(broken)
    try:
        result = staged.again(wheelhouse)
        assert result.code == 2, result.out
        assert "devices[0] (sim-1) rtae: unknown key 'rtae'" in result.out
        assert "needs fixing before the service can start" in result.out
        assert config.read_text() == broken
    finally:
        config.write_text(saved)


@pytest.mark.slow
def test_a_missing_credential_is_named(staged: Staged, wheelhouse: Path) -> None:
    secret = staged.root / "etc/credstore/edge-agent.mqtt-password"
    secret.rename(secret.with_suffix(".away"))
    try:
        result = staged.again(wheelhouse)
        assert result.code == 2, result.out
        assert "mqtt.password: cannot read" in result.out and "mqtt-password: No such file" in result.out
        assert "s3cret" not in result.out
    finally:
        secret.with_suffix(".away").rename(secret)


@pytest.mark.slow
def test_unit_verifies_against_the_installed_tree(staged: Staged, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    system_units = Path("/lib/systemd/system")
    if analyze is None or not (system_units / "sysinit.target").exists():
        pytest.fail("systemd-analyze and the system's units are needed (scripts/test installs systemd)")
    # What verify looks at: the unit, the programs it starts, and the system's own units.
    root = tmp_path / "root"
    for rel in ("etc/systemd/system/edge-agent.service", "opt/edge-agent/venv/bin/edge-agent"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staged.root / rel, root / rel)
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "bin").mkdir()
    shutil.copy2("/bin/kill", root / "bin/kill")
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", str(root / "etc/systemd/system/edge-agent.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


NAMESPACE_RUN = r"""
set -euo pipefail
# A private copy of /etc and empty /opt, /var/lib, /usr/local/bin: useradd and the install stay
# in here.
mount --make-rprivate /
cp -a /etc "$WORK/etc"
mount --bind "$WORK/etc" /etc
mount -t tmpfs tmpfs /opt
mount -t tmpfs tmpfs /var/lib
mount -t tmpfs tmpfs /usr/local/bin
mkdir /opt/edge-agent
mount --bind "$STAGED/opt/edge-agent" /opt/edge-agent
install -d -m 0700 /etc/credstore
echo s3cret > /etc/credstore/edge-agent.mqtt-password
# A config from a staging root, where the group edge-agent did not exist: root's, 0600.
install -d -m 0755 /etc/edge-agent
install -m 0600 "$EXAMPLE" /etc/edge-agent/config.yaml
for run in first second; do
  "$SCRIPT" --config-example "$EXAMPLE" --wheels "$WHEELS" --python "$PY" > "$WORK/$run.log" 2>&1 \
    || echo "$run=$?" >> "$WORK/$run.log"
done
{
  echo "id: $(id -nG edge-agent)"
  getent passwd edge-agent | cut -d: -f6,7
  readlink /usr/local/bin/edge-agent
  stat -c '%n %U:%G %a' /etc/edge-agent /etc/edge-agent/config.yaml /var/lib/edge-agent /etc/credstore \
    /etc/systemd/system/edge-agent.service
} > "$WORK/facts"
"""


@pytest.mark.slow
def test_root_install_creates_the_user_and_skips_systemctl(staged: Staged, wheelhouse: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("useradd") is None:
        pytest.skip("needs root, unshare and useradd")
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot create a mount namespace here")
    if Path("/run/systemd/system").exists():
        pytest.skip("systemd runs here: this test is for machines where systemctl must be skipped")
    env = {
        "WORK": str(tmp_path),
        "STAGED": str(staged.root),
        "SCRIPT": str(staged.script),
        "EXAMPLE": str(staged.example),
        "WHEELS": str(wheelhouse),
        # /usr/local/bin is hidden in the namespace: name an interpreter that lives elsewhere.
        "PY": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
    }
    subprocess.run(["unshare", "--mount", "bash", "-c", NAMESPACE_RUN], env={**os.environ, **env}, check=True)
    first = (tmp_path / "first.log").read_text()
    second = (tmp_path / "second.log").read_text()
    facts = (tmp_path / "facts").read_text()

    assert "created system user edge-agent (groups dialout, video)" in first, first
    assert "made /etc/edge-agent/config.yaml readable by the group edge-agent" in first
    assert "systemd is not running here: skipped systemctl daemon-reload and enable" in first
    assert "OK — gateway gw-dock-01" in first and "first=" not in first
    assert "user edge-agent exists" in second and "kept the existing /etc/edge-agent/config.yaml" in second
    assert "made /etc/edge-agent/config.yaml readable" not in second
    assert "second=" not in second, second

    assert set(facts.splitlines()[0].removeprefix("id: ").split()) == {"edge-agent", "dialout", "video"}
    assert "/var/lib/edge-agent:/usr/sbin/nologin" in facts
    assert "/etc/edge-agent root:root 755" in facts
    assert "/etc/edge-agent/config.yaml root:edge-agent 640" in facts
    assert "/var/lib/edge-agent edge-agent:edge-agent 750" in facts
    assert "/etc/credstore root:root 700" in facts
    assert "/etc/systemd/system/edge-agent.service root:root 644" in facts
    assert "/opt/edge-agent/venv/bin/edge-agent\n" in facts
