"""Deployment files: the systemd units (verified and rated by systemd-analyze), the example config (every key,
valid, true defaults), and the Kubernetes manifests (parsed, holding what a StatefulSet per account needs, and
agreeing with their config). The container image has its own module, test_container.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from syncd.commands.check import offline_problems
from syncd.commands.cli import EX_CONFIG, EX_TEMPFAIL
from syncd.config import DEFAULT_PATH, Config, RunConfig, load, loads
from tests.support import load_yaml, seconds

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"
SHUTDOWN_TIMEOUT = RunConfig().shutdown_timeout

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (CI installs it: apt-get install systemd)",
)


# ---------------------------------------------------------------------------------------------------------------
# systemd


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}} (comments and blank lines dropped)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(settings: dict[str, list[str]], key: str) -> str:
    values = settings.get(key, [])
    assert len(values) == 1, f"{key}: expected one value, got {values}"
    return values[0]


def venv_syncd() -> str:
    found = shutil.which("syncd", path=str(Path(sys.executable).parent)) or shutil.which("syncd")
    assert found, "the syncd console script is not installed next to this Python"
    return found


@needs_systemd_analyze
def test_units_pass_systemd_analyze_verify() -> None:
    """Both units pass `systemd-analyze verify` (via verify-units.sh, ExecStart pointed at this install's syncd)."""
    result = subprocess.run(
        [str(SYSTEMD / "verify-units.sh"), venv_syncd()], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "verified" in result.stdout


@needs_systemd_analyze
@pytest.mark.parametrize(
    ("unit", "damage", "complaint"),
    [
        ("syncd@.service", ("KeyringMode=private", "KeyringMode=private\nProtectKernelModulez=yes"), "Unknown key"),
        ("syncd.service", ("TimeoutStopSec=45s", "TimeoutStopSec=soon"), "Failed to parse"),
        ("syncd.service", ("ExecStart=/usr/bin/syncd run", "ExecStart=/usr/bin/syncd-missing run"), "ExecStart"),
    ],
)
def test_verify_script_fails_on_a_broken_unit(
    tmp_path: Path, unit: str, damage: tuple[str, str], complaint: str
) -> None:
    """verify-units.sh fails, saying why, when a unit has an unknown key, a bad value or no `syncd` ExecStart."""
    copy = tmp_path / "systemd"
    shutil.copytree(SYSTEMD, copy)
    text = (copy / unit).read_text()
    assert damage[0] in text
    (copy / unit).write_text(text.replace(damage[0], damage[1], 1))
    result = subprocess.run(
        [str(copy / "verify-units.sh"), venv_syncd()], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert complaint in result.stderr


@needs_systemd_analyze
@pytest.mark.parametrize("unit", ["syncd.service", "syncd@.service"])
def test_security_exposure_is_at_most_2(tmp_path: Path, unit: str) -> None:
    """`systemd-analyze security --offline=true` rates each unit (template as an instance) 2.0 or less."""
    target = SYSTEMD / unit
    if "@" in unit:
        target = tmp_path / "syncd@acme.service"
        shutil.copy(SYSTEMD / unit, target)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for (\S+): (\d+(?:\.\d+)?)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(2)) <= 2.0, result.stdout


def test_template_has_the_same_hardening() -> None:
    """syncd@.service differs from syncd.service only in per-instance settings, each using %i."""
    single = unit_settings(SYSTEMD / "syncd.service")
    template = unit_settings(SYSTEMD / "syncd@.service")
    per_instance = {"Description", "ExecStart", "StateDirectory", "LoadCredential"}
    for section in ("Unit", "Service", "Install"):
        differing = {
            k
            for k in single[section].keys() | template[section].keys()
            if single[section].get(k) != template[section].get(k)
        }
        assert differing <= per_instance, f"[{section}] {differing - per_instance} differ"
    for key in per_instance:
        settings = template["Unit" if key == "Description" else "Service"]
        assert "%i" in one(settings, key), key
    assert one(template["Service"], "ExecStart") == "/usr/bin/syncd run --config /etc/syncd/%i.toml"
    assert one(template["Service"], "StateDirectory") == "syncd/%i"


def test_unit_matches_the_daemon() -> None:
    """The unit fits the daemon: notify+watchdog, no restart on exit 78 but a restart on 75 (transient), SIGTERM,
    stop timeout > shutdown_timeout."""
    service = unit_settings(SYSTEMD / "syncd.service")["Service"]
    assert one(service, "Type") == "notify"
    assert one(service, "NotifyAccess") == "main"
    assert seconds(one(service, "WatchdogSec")) > 0
    assert one(service, "Restart") == "on-failure"
    assert one(service, "RestartPreventExitStatus") == str(EX_CONFIG)
    assert str(EX_TEMPFAIL) not in one(service, "RestartPreventExitStatus").split()
    assert not service.get("SuccessExitStatus"), "75 must stay a failure, so that systemd restarts it"
    assert one(service, "KillSignal") == "SIGTERM"
    assert seconds(one(service, "TimeoutStopSec")) > SHUTDOWN_TIMEOUT
    assert one(service, "ExecStart") == f"/usr/bin/syncd run --config {DEFAULT_PATH}"
    assert one(service, "DynamicUser") == "yes"
    assert one(service, "StateDirectory") == "syncd"


def test_systemd_config_reads_the_units_credentials(tmp_path: Path) -> None:
    """deploy/systemd/syncd.toml loads from the unit's LoadCredential= files and keeps state in StateDirectory."""
    service = unit_settings(SYSTEMD / "syncd.service")["Service"]
    prefix, _, directory = one(service, "LoadCredential").partition(":")
    assert directory.startswith("/etc/syncd/")
    text = (SYSTEMD / "syncd.toml").read_text()
    names = re.findall(r'"credential:([^"]+)"', text)
    assert len(names) == 3
    creds = tmp_path / "credentials"
    creds.mkdir()
    for name in names:
        assert name.startswith(f"{prefix}_"), f"{name} is not a credential of LoadCredential={prefix}:..."
        (creds / name).write_text(f"value-of-{name}\n")
        (creds / name).chmod(0o400)
    config = load(SYSTEMD / "syncd.toml", environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.sell.token.value == f"value-of-{prefix}_sell_token"
    assert Path(config.state.path).parent == Path("/var/lib") / one(service, "StateDirectory")
    assert not offline_problems(config)


# ---------------------------------------------------------------------------------------------------------------
# the example config

EXAMPLE = DEPLOY / "syncd.example.toml"
NOT_IN_FILE = {("", "source")}  # set by `load`, never written in the file
EXAMPLE_OWN_VALUES = {
    "sell.token",
    "sinks.salesmanago.base_url",
    "sinks.salesmanago.client_id",
    "sinks.salesmanago.api_secret",
    "sinks.salesmanago.owner",
    "sinks.ontraport.app_id",
    "sinks.ontraport.api_key",
}  # fmt: skip (the values an account must fill in: its secrets, ids and instance)


def struct_keys(cls: type[msgspec.Struct], section: str = "") -> Iterator[tuple[str, str, msgspec.structs.FieldInfo]]:
    """Every (section, key, field) of the config structs, nested tables included."""
    for info in msgspec.structs.fields(cls):
        yield section, info.encode_name, info
        for candidate in (info.type, *getattr(info.type, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
                yield from struct_keys(candidate, f"{section}.{info.encode_name}".lstrip("."))


def documented_keys(text: str) -> set[tuple[str, str]]:
    """(section, key) of every key in the file, set or shown commented out (`# key = ...`); a table header
    `[a.b]` (even commented out) documents key b of section a, and key a of the top level. A quoted part names an
    entry of a table of tables (`[a.b."1"]`: entry "1" of b): the keys under it document b's entries' keys."""
    found: set[tuple[str, str]] = set()
    section = ""
    for raw in text.splitlines():
        line = raw.strip().lstrip("#").strip()
        header = re.fullmatch(r'\[((?:[\w]+|"[^"]+")(?:\.(?:[\w]+|"[^"]+"))*)\]', line)
        if header:
            parts = [part for part in re.findall(r'[\w]+|"[^"]+"', header.group(1)) if not part.startswith('"')]
            section = ".".join(parts)
            found |= {(".".join(parts[:i]), parts[i]) for i in range(len(parts))}
            continue
        key = re.match(r'^("[^"]+"|[A-Za-z_][\w-]*)\s*=\s', line)
        if key:
            found.add((section, key.group(1).strip('"')))
    return found


def example_environ() -> dict[str, str]:
    names = re.findall(r'"env:([A-Z0-9_]+)"', EXAMPLE.read_text())
    assert names, "the example names no env: secrets"
    return {name: f"value-of-{name}" for name in names}


def test_example_config_is_valid() -> None:
    """The example config loads (with the env vars it names) and its field mappings pass the offline check."""
    config = load(EXAMPLE, environ=example_environ())
    assert [s.name for s in config.enabled_sinks()] == ["salesmanago", "ontraport"]
    assert config.sell.token.value == "value-of-SYNCD_SELL_TOKEN"
    assert not offline_problems(config)


def test_example_documents_every_key() -> None:
    """Every key of every config struct appears in the example, set or commented out, in its own table."""
    documented = documented_keys(EXAMPLE.read_text())
    wanted = {(section, key) for section, key, _ in struct_keys(Config)} - NOT_IN_FILE
    missing = sorted(f"{s}.{k}".lstrip(".") for s, k in wanted - documented)
    assert not missing, f"undocumented keys: {missing}"


RESOLVED = {"state.path"}  # keys whose loaded value is resolved from the text (a path against the file's directory)


def is_table(info: msgspec.structs.FieldInfo) -> bool:
    """A key that is a table of its own keys (checked key by key), not a value such as `fields` (a mapping)."""
    return any(
        isinstance(candidate, type) and issubclass(candidate, msgspec.Struct)
        for candidate in (info.type, *getattr(info.type, "__args__", ()))
    )


def test_example_shows_the_true_defaults() -> None:
    """Each key the example sets shows the struct's default, bar the few it must fill in (secrets, ids, ...):
    `state.path` and the `[fields]` tables (their examples commented out) included."""
    config = load(EXAMPLE, environ=example_environ())
    raw = tomllib.loads(EXAMPLE.read_text())
    checked = 0
    for section, key, info in struct_keys(Config):
        dotted = f"{section}.{key}".lstrip(".")
        table: Any = raw
        for part in section.split(".") if section else []:
            table = table.get(part, {})
        if key not in table or is_table(info) or dotted in EXAMPLE_OWN_VALUES:
            continue
        value: Any = config
        for part in dotted.split("."):
            value = getattr(value, part)
        if dotted in RESOLVED:  # loading makes it absolute: what the file shows is what must be the default
            value = table[key]
        default = info.default_factory() if info.default is msgspec.NODEFAULT else info.default
        assert value == default, f"{dotted}: the example shows {table[key]!r}, the default is {default!r}"
        checked += 1
    assert checked > 40


# ---------------------------------------------------------------------------------------------------------------
# Kubernetes: one StatefulSet per account, as kustomize overlays of one base


def manifests(directory: Path) -> dict[str, dict[str, Any]]:
    """The base's resources by kind."""
    (kustomization,) = load_yaml(directory / "kustomization.yaml")
    found: dict[str, dict[str, Any]] = {}
    for resource in kustomization["resources"]:
        for document in load_yaml(directory / resource):
            found[document["kind"]] = document
    return found


def overlays() -> list[Path]:
    (top,) = load_yaml(KUBERNETES / "kustomization.yaml")
    return [KUBERNETES / resource for resource in top["resources"]]


def test_every_kubernetes_file_parses() -> None:
    """Every Kubernetes YAML file parses and every file a kustomization names exists."""
    files = sorted(KUBERNETES.rglob("*.yaml"))
    assert len(files) >= 5
    for file in files:
        assert all(isinstance(document, dict) for document in load_yaml(file)), file
    for kustomization in KUBERNETES.rglob("kustomization.yaml"):
        (spec,) = load_yaml(kustomization)
        assert spec["kind"] == "Kustomization"
        for resource in spec.get("resources", []):
            assert (kustomization.parent / resource).exists(), f"{kustomization}: {resource}"
        for generator in spec.get("configMapGenerator", []):
            for file in generator["files"]:
                assert (kustomization.parent / file).is_file(), f"{kustomization}: {file}"
    assert overlays(), "deploy/kubernetes/kustomization.yaml lists no account"


def test_statefulset_holds_what_syncd_needs() -> None:
    """The StatefulSet: 1 replica, state claim, /livez+/readyz probes, config+secret files, non-root, locked down."""
    resources = manifests(KUBERNETES / "base")
    statefulset, service = resources["StatefulSet"], resources["Service"]
    spec = statefulset["spec"]
    assert spec["replicas"] == 1
    assert spec["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["terminationGracePeriodSeconds"] > SHUTDOWN_TIMEOUT
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= container["resources"].keys()
    assert container["args"] == ["run"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert ports["health"] == 9187
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (claim,) = spec["volumeClaimTemplates"]
    assert mounts[claim["metadata"]["name"]]["mountPath"] == "/var/lib/syncd"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    config_mount = next(m for m in mounts.values() if "configMap" in volumes.get(m["name"], {}))
    secret_mount = next(m for m in mounts.values() if "secret" in volumes.get(m["name"], {}))
    assert config_mount["readOnly"] is True and secret_mount["readOnly"] is True
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["SYNCD_CONFIG"] == f"{config_mount['mountPath']}/syncd.toml" == str(DEFAULT_PATH)
    assert secret_mount["mountPath"] == "/run/secrets"


@pytest.mark.parametrize("overlay", overlays(), ids=lambda path: path.name)
def test_account_overlay_agrees_with_its_config(overlay: Path, tmp_path: Path) -> None:
    """Each account overlay owns its names/selectors, and its syncd.toml loads with the Secret's keys and port."""
    (kustomization,) = load_yaml(overlay / "kustomization.yaml")
    base = manifests(KUBERNETES / "base")
    assert kustomization["nameSuffix"] == f"-{overlay.name}"
    assert any(
        label.get("includeSelectors") and overlay.name in label["pairs"].values() for label in kustomization["labels"]
    )
    pod = base["StatefulSet"]["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    config_map = next(v["configMap"]["name"] for v in volumes.values() if "configMap" in v)
    secret = next(v["secret"]["secretName"] for v in volumes.values() if "secret" in v)
    (config_generator,) = [g for g in kustomization["configMapGenerator"] if g["name"] == config_map]
    (secret_generator,) = [g for g in kustomization["secretGenerator"] if g["name"] == secret]
    assert config_generator["files"] == ["syncd.toml"]
    keys = {Path(file).name for file in secret_generator["files"]}
    text = (overlay / "syncd.toml").read_text()
    assert {Path(p).name for p in re.findall(r'"file:([^"]+)"', text)} == keys
    assert set(re.findall(r'"file:(/[^"]+)/[^/"]+"', text)) == {"/run/secrets"}
    for key in keys:
        (tmp_path / key).write_text("x-secret")
        (tmp_path / key).chmod(0o400)
    config = loads(text.replace('"file:/run/secrets/', f'"file:{tmp_path}/'), source=str(overlay / "syncd.toml"))
    (container,) = pod["containers"]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "health")
    assert config.health.listen == f"0.0.0.0:{port}"
    assert config.state.path == "/var/lib/syncd/syncd.db"
    assert (overlay / "secrets" / ".gitignore").is_file(), "secret files must not be committed"
    assert any(image["name"] == container["image"] for image in kustomization["images"])
