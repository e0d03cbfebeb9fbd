"""The container image: the Containerfile read as a builder reads it, the compose file, the container config, and
the image's command run the way the image runs it (as its non-root user, from a read-only install, config via
$SYNCD_CONFIG, state on a volume) against the sandboxes."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import syncd
from state.requeue import TOUCHED
from syncd.config import DEFAULT_PATH, RunConfig, loads
from tests.support import Processes, free_port, load_yaml, seconds, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONTAINER = DEPLOY / "container"
SHUTDOWN_TIMEOUT = RunConfig().shutdown_timeout


# ---------------------------------------------------------------------------------------------------------------
# the container image: the Containerfile read like a builder would


@dataclass
class Stage:
    base: str
    name: str = ""
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.all(instruction)
        assert found, f"no {instruction} in the final stage"
        return found[-1]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for word in shlex.split(args):
                name, _, value = word.partition("=")
                values[name] = value
        return values


def containerfile_stages(path: Path) -> list[Stage]:
    """The stages of a Containerfile, each with its (INSTRUCTION, arguments) in order."""
    text = re.sub(
        r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    )
    stages: list[Stage] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        instruction, _, args = line.strip().partition(" ")
        instruction, args = instruction.upper(), " ".join(args.split())
        if instruction == "FROM":
            base, _, name = args.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip()))
        elif stages:
            stages[-1].instructions.append((instruction, args))
    return stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


FINAL = containerfile_stages(CONTAINER / "Containerfile")[-1]


def test_containerfile_builds_a_wheel_and_runs_it_as_non_root() -> None:
    """Multi-stage wheel build; non-root USER, state VOLUME, $SYNCD_CONFIG, /readyz check, SIGTERM, `syncd run`."""
    stages = containerfile_stages(CONTAINER / "Containerfile")
    assert len(stages) == 2
    builder, final = stages
    assert builder.name == "build"
    assert any("pip wheel" in args for args in builder.all("RUN"))
    assert re.fullmatch(r"docker\.io/library/python:\$\{PYTHON_VERSION\}-slim", final.base)
    assert any(args.startswith("--from=build ") for args in final.all("COPY"))
    user, _, group = final.last("USER").partition(":")
    assert user.isdigit() and int(user) != 0 and group.isdigit() and int(group) != 0
    assert final.env()["SYNCD_CONFIG"] == str(DEFAULT_PATH)
    assert exec_form(final.last("VOLUME")) == ["/var/lib/syncd"]
    assert final.last("STOPSIGNAL") == "SIGTERM"
    assert exec_form(final.last("ENTRYPOINT")) == ["syncd"]
    assert exec_form(final.last("CMD")) == ["run"]
    check = final.last("HEALTHCHECK")
    assert "/readyz" in check and "curl" not in check and "wget" not in check
    assert exec_form(check.partition(" CMD ")[2])[:2] == ["python", "-c"]


def test_compose_file() -> None:
    """compose.yaml builds the image, restarts it, mounts config/state/secrets, checks /readyz, drains on SIGTERM."""
    (compose,) = load_yaml(CONTAINER / "compose.yaml")
    service = compose["services"]["syncd"]
    build = service["build"]
    assert (CONTAINER / build["context"] / build["dockerfile"]).resolve() == (CONTAINER / "Containerfile").resolve()
    assert service["restart"] in ("unless-stopped", "always", "on-failure")
    assert service["environment"]["SYNCD_CONFIG"] == str(DEFAULT_PATH)
    volumes = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
    assert volumes["/var/lib/syncd"] in compose["volumes"]
    assert (CONTAINER / volumes[str(DEFAULT_PATH)]).is_file()
    assert sorted(service["secrets"]) == sorted(compose["secrets"])
    for name, secret in compose["secrets"].items():
        assert secret["file"] == f"./secrets/{name}"
    healthcheck = service["healthcheck"]["test"]
    assert healthcheck[0] == "CMD"
    assert healthcheck[1:] == exec_form(FINAL.last("HEALTHCHECK").partition(" CMD ")[2])
    assert service["stop_signal"] == "SIGTERM"
    assert seconds(service["stop_grace_period"]) > SHUTDOWN_TIMEOUT
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]


def secret_files(text: str) -> dict[str, str]:
    """The `file:` secrets of a config: {file name: directory}."""
    return {Path(p).name: str(Path(p).parent) for p in re.findall(r'"file:([^"]+)"', text)}


def test_container_config_fits_the_image_and_compose(tmp_path: Path) -> None:
    """The container syncd.toml loads with compose's secrets, state on the volume, health on 0.0.0.0:EXPOSE."""
    text = (CONTAINER / "syncd.toml").read_text()
    (compose,) = load_yaml(CONTAINER / "compose.yaml")
    files = secret_files(text)
    assert set(files) == set(compose["secrets"]) and set(files.values()) == {"/run/secrets"}
    for name in files:
        (tmp_path / name).write_text("x-secret")
        (tmp_path / name).chmod(0o400)
    config = loads(text.replace("/run/secrets/", f"{tmp_path}/"), source="container syncd.toml")
    assert Path(config.state.path).parent == Path(exec_form(FINAL.last("VOLUME"))[0])
    assert config.health.listen == f"0.0.0.0:{FINAL.last('EXPOSE')}"
    assert config.log.format == "json"


# ---------------------------------------------------------------------------------------------------------------
# the container's command, run the way the image runs it (no container engine here): the image's ENTRYPOINT and
# CMD, as its USER, from a read-only install of syncd and its dependencies, with its ENV and WORKDIR, the config
# at $SYNCD_CONFIG and the state on a "volume" directory owned by that user. The image's paths live under a
# temporary root directory, standing in for the container's "/".

EVENTS = 200
IMAGE_PATHS = ("/opt/syncd", "/etc/syncd", "/var/lib/syncd", "/run/secrets")


@dataclass
class Image:
    """The image's filesystem under `root`, and how to run a command as its user."""

    root: Path
    uid: int
    gid: int
    as_user: list[str]  # the command prefix that switches to the image's user

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def translate(self, text: str) -> str:
        """Text naming the image's paths, with those paths under `root`."""
        for inside in IMAGE_PATHS:
            text = text.replace(inside, str(self.path(inside)))
        return text

    def environ(self) -> dict[str, str]:
        env = {k: self.translate(v) for k, v in FINAL.env().items()}
        env["PATH"] = env["PATH"].replace("$PATH", "/usr/local/bin:/usr/bin:/bin")
        env["HOME"] = str(self.path("/var/lib/syncd"))
        return env

    def run(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_user, *argv],
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            **kwargs,
        )


def switch_user() -> tuple[list[str], int, int]:
    """How to run as the image's USER: setpriv (util-linux) when root; as ourselves when we are not root."""
    user, _, group = FINAL.last("USER").partition(":")
    if os.geteuid() != 0:
        return [], os.geteuid(), os.getegid()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to run as the image's non-root user")
    return (
        [setpriv, f"--reuid={user}", f"--regid={group or user}", "--clear-groups", "--no-new-privs"],
        int(user),
        int(group or user),
    )


def interpreter_for(as_user: list[str]) -> str:
    """A Python of this minor version that the image's user can run (pyenv's may sit under /root)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        f"/usr/local/bin/python{version}",  # where the python:*-slim images have it
        f"/usr/bin/python{version}",
        shutil.which(f"python{version}") or "",
        os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
    ]
    probe = "import sqlite3, ssl, sys; print('%d.%d' % sys.version_info[:2])"
    for candidate in dict.fromkeys(c for c in candidates if c and os.path.exists(c)):
        result = subprocess.run(
            [*as_user, candidate, "-I", "-c", probe], capture_output=True, text=True, cwd="/", check=False
        )
        if result.returncode == 0 and result.stdout.strip() == version:
            return candidate
    pytest.fail(f"no Python {version} that a non-root user may run: tried {candidates}")


def runtime_distributions() -> list[importlib.metadata.Distribution]:
    """The distributions syncd needs at run time (its requirements, recursively, without extras)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = list(importlib.metadata.requires("syncd") or [])
    while todo:
        requirement = Requirement(todo.pop())
        name = canonicalize_name(requirement.name)
        if name in found or (requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})):
            continue
        found[name] = importlib.metadata.distribution(name)
        todo.extend(found[name].requires or [])
    return list(found.values())


def link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def install(image: Image) -> Path:
    """What the builder stage leaves in /opt/syncd: a venv with syncd, its dependencies and its console script."""
    venv = image.path("/opt/syncd")
    subprocess.run([interpreter_for(image.as_user), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / version / "site-packages"
    for dist in runtime_distributions():
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if file.parts[0] != ".." and source.is_file():
                link_or_copy(source, site / file)
    for package in ("syncd", "state"):
        source = Path(importlib.import_module(package).__file__ or "").parent
        shutil.copytree(source, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    meta = site / f"syncd-{syncd.__version__}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: syncd\nVersion: {syncd.__version__}\n")
    scripts = [ep for ep in importlib.metadata.entry_points(group="console_scripts") if ep.name == "syncd"]
    assert scripts, "syncd's console script is not registered"
    (meta / "entry_points.txt").write_text(f"[console_scripts]\nsyncd = {scripts[0].value}\n")
    launcher = venv / "bin" / "syncd"
    launcher.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom {scripts[0].module} import {scripts[0].attr}\n"
        f"if __name__ == '__main__':\n    sys.exit({scripts[0].attr}())\n"
    )
    launcher.chmod(0o755)
    for directory, _, _ in os.walk(venv):  # read-only for everyone, the image's user included
        os.chmod(directory, 0o555)
    return venv


@pytest.fixture
def image() -> Iterator[Image]:
    as_user, uid, gid = switch_user()
    root = Path(tempfile.mkdtemp(prefix="syncd-image-"))  # not under pytest's 0700 tmp dir: the user must reach it
    root.chmod(0o755)
    image = Image(root, uid, gid, as_user)
    try:
        for inside in ("/etc/syncd", "/run/secrets"):
            image.path(inside).mkdir(parents=True, mode=0o755)
        volume = image.path("/var/lib/syncd")
        volume.mkdir(parents=True)
        os.chown(volume, uid, gid)
        volume.chmod(0o700)
        install(image)
        yield image
    finally:
        for directory, _, _ in os.walk(root):
            os.chmod(directory, 0o755)
        shutil.rmtree(root)


def container_config(image: Image, ports: dict[str, int]) -> Path:
    """deploy/container/syncd.toml as shipped, its URLs pointed at the loopback sandboxes and its paths under the
    image root; its secret files written as compose mounts them (owned by the image's user, 0400)."""
    text = (CONTAINER / "syncd.toml").read_text()
    for public, name in (
        ("https://api.getbase.com", "sell"),
        ("https://app3.salesmanago.com", "salesmanago"),
        ("https://api.ontraport.com", "ontraport"),
    ):
        assert text.count(f'"{public}"') == 1, f"{public} is not in the container config"
        text = text.replace(f'"{public}"', f'"http://127.0.0.1:{ports[name]}"')
    assert "https://" not in text, "the test must never reach a real API"
    assert text.count('"0.0.0.0:9187"') == 1
    text = image.translate(text.replace('"0.0.0.0:9187"', f'"0.0.0.0:{ports["health"]}"'))
    for name in secret_files((CONTAINER / "syncd.toml").read_text()):
        secret = image.path("/run/secrets") / name
        secret.write_text(f"container-test-{name}")
        os.chown(secret, image.uid, image.gid)
        secret.chmod(0o400)
    config = Path(image.translate(FINAL.env()["SYNCD_CONFIG"]))
    config.write_text(text)
    config.chmod(0o644)
    return config


def stored_events(db: Path) -> int:
    """Events stored from the streams: not the requeues the daemon may add while it delivers (an organisation's
    members written again, a contact another record let go of), which depend on the order deliveries land in."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events WHERE action <> ?", (TOUCHED,)).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


# Checked on the way: the install is not writable by the user, the config is found through $SYNCD_CONFIG, every
# event lands in the store on the volume (owned by the user, 0600), /readyz answers 200, the image's own HEALTHCHECK
# command passes, the process runs as the user with no-new-privs, and nothing was written into the install.
def test_image_command_runs_as_its_user_from_a_read_only_install(
    image: Image, tmp_path: Path, processes: Processes
) -> None:
    """`syncd run` as the image's user from a read-only install ingests, is ready, drains on SIGTERM, exit 0."""
    venv = image.path("/opt/syncd")
    denied = image.run(["python", "-c", f"open({str(venv / 'probe')!r}, 'w')"])
    assert denied.returncode != 0 and "PermissionError" in denied.stderr, "the install is writable by the user"
    before = sorted(p.relative_to(venv) for p in venv.rglob("*"))

    ports = {name: free_port() for name in ("sell", "salesmanago", "ontraport", "health")}
    config = container_config(image, ports)
    sandbox_log = tmp_path / "sandbox.log"
    with sandbox_log.open("wb") as out:
        sandbox = processes.syncd(
            "sandbox", "--config", str(config), "--events", str(EVENTS), "--seed", "8", stdout=out
        )
    log = tmp_path / "syncd.log"
    db = image.path("/var/lib/syncd") / "syncd.db"
    daemon: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: sandbox_log.read_text().count("sandbox_ready") == 3, timeout=60, what="the sandboxes")
        command = exec_form(FINAL.last("ENTRYPOINT")) + exec_form(FINAL.last("CMD"))
        with log.open("wb") as out:
            daemon = processes.start(
                [*image.as_user, *command],
                env=image.environ(),
                cwd=image.translate(FINAL.last("WORKDIR")),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = daemon
        try:
            wait_until(lambda: stored_events(db) == EVENTS or proc.poll() is not None, timeout=60, what="the ingest")
        except AssertionError as exc:  # say how far it got, and what the daemon logged
            raise AssertionError(f"{exc}: {stored_events(db)} of {EVENTS} stored\n{log.read_text()[-3000:]}") from None
        assert daemon.poll() is None, log.read_text()

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{ports['health']}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=30, what="/readyz to answer 200")
        check = exec_form(FINAL.last("HEALTHCHECK").partition(" CMD ")[2])
        check = [arg.replace(":9187/", f":{ports['health']}/") for arg in check]
        healthcheck = image.run(check, cwd="/")
        assert healthcheck.returncode == 0, healthcheck.stderr

        status = Path(f"/proc/{daemon.pid}/status").read_text()
        assert re.search(rf"^Uid:\s+{image.uid}\s+{image.uid}\s", status, re.MULTILINE), status
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.MULTILINE) or not image.as_user
        owner = db.stat()
        assert (owner.st_uid, owner.st_gid) == (image.uid, image.gid)
        assert stat.S_IMODE(owner.st_mode) == 0o600
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=45) == 0, log.read_text()
    finally:
        for proc_ in (daemon, sandbox):
            if proc_ is not None and proc_.poll() is None:
                proc_.send_signal(signal.SIGTERM)
                try:
                    proc_.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc_.kill()
                    proc_.wait(timeout=10)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[-1]["event"] == "daemon_stopped" and lines[-1]["exit_code"] == 0
    assert any(line["event"] == "health_listening" and f":{ports['health']}" in line["url"] for line in lines)
    started = next(line for line in lines if line["event"] == "daemon_started")
    assert started["state"] == str(db) and started["sinks"] == ["salesmanago", "ontraport"]
    assert sorted(p.relative_to(venv) for p in venv.rglob("*")) == before, "syncd wrote into its install"
