"""The shipping files: Dockerfile, compose, .env.example, and the container's start path."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.db import sqlite_file
from app.settings import Settings
from harness.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent
PROCESS_VARIABLES = {"PORT", "WEB_CONCURRENCY", "GRACEFUL_SHUTDOWN_SECONDS", "POSTGRES_PASSWORD",
                     "PROMETHEUS_MULTIPROC_DIR"}


@dataclass
class Stage:
    name: str
    parent: str  # the FROM image or stage
    lines: list[str]

    def instructions(self, keyword: str) -> list[str]:
        """The arguments of every `keyword` instruction in this stage, in order."""
        return [line.split(None, 1)[1] for line in self.lines
                if line.split(None, 1)[0].upper() == keyword]


def dockerfile_stages() -> dict[str, Stage]:
    """The Dockerfile's stages in order (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
            assert match, line
            current = Stage(match.group(2) or f"stage{len(stages)}", match.group(1), [])
            stages[current.name] = current
        elif current is not None:
            current.lines.append(line)
    return stages


def inherited(stage: str, keyword: str) -> list[str]:
    """`keyword` instructions of a stage and of the stages it is built FROM, oldest first."""
    stages = dockerfile_stages()
    chain = []
    while stage in stages:
        chain.insert(0, stages[stage])
        stage = stages[stage].parent
    return [value for s in chain for value in s.instructions(keyword)]


def image_env(stage: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in inherited(stage, "ENV"):
        env.update(re.findall(r"(\w+)=(\S+)", value))
    return env


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_a_plain_docker_build_makes_the_gateway_not_the_simulator() -> None:
    """`docker build .` builds the last stage: it must be the service."""
    stages = list(dockerfile_stages().values())
    assert stages[-1].name == "gateway"
    assert stages[-1].instructions("CMD")[-1].startswith('["payletter-gateway", "serve"')
    assert "simulator" in [s.name for s in stages[:-1]]


def test_the_gateway_runs_as_a_non_root_user_and_is_healthy_only_when_ready() -> None:
    users = inherited("gateway", "USER")
    assert users, "the gateway stage must set USER"
    assert users[-1].split(":")[0] not in ("0", "root")
    healthcheck = inherited("gateway", "HEALTHCHECK")[-1]
    assert "/readyz" in healthcheck  # healthy = the database answers too


def test_the_simulator_stage_runs_one_process_on_sim_port() -> None:
    """uvicorn takes WEB_CONCURRENCY from the environment and refuses an app object with
    more than one worker; the simulator keeps its payments in memory anyway."""
    assert image_env("simulator").get("WEB_CONCURRENCY") == "1"
    cmd = dockerfile_stages()["simulator"].instructions("CMD")[-1]
    assert "--port" not in cmd, "the port comes from SIM_PORT, like the healthcheck's"
    assert "SIM_PORT" in inherited("simulator", "HEALTHCHECK")[-1]


def test_the_default_sqlite_database_lives_on_a_volume_the_service_can_write() -> None:
    gateway = dockerfile_stages()["gateway"]
    workdir = Path(inherited("gateway", "WORKDIR")[-1])
    database = sqlite_file(Settings.model_fields["database_url"].default)
    assert database is not None and not database.is_absolute()
    folder = (workdir / database).parent
    volumes = [v for value in gateway.instructions("VOLUME") for v in json.loads(value)]
    assert str(folder) in volumes
    uid = inherited("gateway", "USER")[-1].split(":")[0]
    run = " ".join(gateway.instructions("RUN"))
    assert f"mkdir {folder}" in run and re.search(rf"chown {uid}(:\d+)? {folder}\b", run)
    assert gateway.lines.index(next(line for line in gateway.lines if "chown" in line)) < \
        gateway.lines.index(next(line for line in gateway.lines if line.startswith("VOLUME")))


def test_docker_stop_waits_longer_than_the_graceful_shutdown() -> None:
    docker_stop_default = 10
    assert int(image_env("gateway")["GRACEFUL_SHUTDOWN_SECONDS"]) < docker_stop_default
    gateway = compose()["services"]["gateway"]
    grace = int(str(gateway["stop_grace_period"]).rstrip("s"))
    assert int(gateway["environment"]["GRACEFUL_SHUTDOWN_SECONDS"]) < grace


def test_the_final_image_has_no_build_tools_or_secrets() -> None:
    stages = dockerfile_stages()
    shipped = " ".join(stages["base"].lines + stages["gateway"].lines)
    for word in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert word not in shipped
    assert "COPY . " not in shipped and "COPY .env" not in shipped
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".git" in ignored
    dependencies = " ".join(stages["build"].lines)
    assert "--require-hashes" in dependencies and "requirements.lock" in dependencies


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_builds_each_service_from_its_own_stage() -> None:
    services = compose()["services"]
    assert services["migrate"]["build"]["target"] == "gateway"
    assert services["migrate"]["image"] == services["gateway"]["image"]
    assert services["simulator"]["build"]["target"] == "simulator"
    stages = dockerfile_stages()
    assert {"gateway", "simulator"} <= set(stages)


def test_compose_migrates_before_the_gateway_starts() -> None:
    services = compose()["services"]
    db = services["db"]
    assert "healthcheck" in db and any("pgdata" in v for v in db["volumes"])
    migrate = services["migrate"]
    assert migrate["command"] == ["alembic", "upgrade", "head"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    gateway = services["gateway"]
    assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["simulator"]["network_mode"] == "service:gateway"


def test_compose_requires_its_secrets_with_a_message() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for name in ("SHOP_API_TOKEN", "OPS_API_TOKEN", "POSTGRES_PASSWORD"):
        assert re.search(r"\$\{" + name + r":\?[^}]+\}", text), name


def env_example_names() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s?([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    return names


def test_every_setting_is_in_env_example_and_nothing_else_is() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    documented = env_example_names()
    assert settings - documented == set(), "settings missing from .env.example"
    assert documented - settings - PROCESS_VARIABLES == set(), "unknown names in .env.example"


def test_compose_sets_only_real_settings() -> None:
    known = {name.upper() for name in Settings.model_fields} | PROCESS_VARIABLES
    for name in ("migrate", "gateway"):
        environment = compose()["services"][name]["environment"]
        assert set(environment) - known == set(), name


def test_the_compose_file_says_what_to_set_and_which_compose_it_needs() -> None:
    header = (ROOT / "docker-compose.yml").read_text().split("\nname:", 1)[0]
    for name in ("POSTGRES_PASSWORD", "SHOP_API_TOKEN", "OPS_API_TOKEN", "Compose v2"):
        assert name in header


def test_the_operations_guide_names_the_latest_migration() -> None:
    latest = max(p.name[:4] for p in (ROOT / "migrations" / "versions").glob("0*.py"))
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert re.search(rf"0001[–-]{latest}\b", guide), f"docs/operations.md: 0001–{latest}"


def resolve(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR:-default} and ${VAR:?message}, as compose would with `env`."""
    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose would refuse to start: {name}: {rest}")
        return rest or ""
    return re.sub(r"\$\{([A-Z_]+)(:[-?])?([^}]*)\}", one, value)


@pytest.mark.e2e
def test_the_container_command_starts_in_a_fresh_virtualenv_against_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    """What the image does, without Docker: install the lock and the package (its templates
    too), migrate, `serve`, /readyz and a page."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "--no-deps", "-r",
                    str(ROOT / "requirements.lock")], check=True)
    build = tmp_path / "src"
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, build / name if build.exists() else _mkdir(build) / name)
    for package in ("app", "demo"):  # what the Dockerfile copies into its build stage
        shutil.copytree(ROOT / package, build / package)
    subprocess.run([*pip, "--no-deps", str(build)], check=True)
    # The pages are package data: every template of the tree is in the installed package.
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from app.kit.templates import ENV; "
         "print('\\n'.join(ENV.list_templates()))"],
        cwd=tmp_path, check=True, capture_output=True, text=True).stdout.split()
    templates = ROOT / "app" / "templates"
    assert sorted(installed) == sorted(
        str(path.relative_to(templates)) for path in templates.rglob("*") if path.is_file())

    secrets = {"SHOP_API_TOKEN": "shop-token-from-compose-test-0001",
               "OPS_API_TOKEN": "ops-token-from-compose-test-0001",
               "POSTGRES_PASSWORD": "unused-here"}
    environment = {k: resolve(str(v), secrets)
                   for k, v in compose()["services"]["gateway"]["environment"].items()}
    port = free_port()
    environment |= {"DATABASE_URL": postgres_url, "PORT": str(port), "WEB_CONCURRENCY": "1"}
    clean_env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
                 **environment}
    workdir = tmp_path / "srv"  # the image's WORKDIR: alembic.ini and migrations only
    workdir.mkdir()
    shutil.copy(ROOT / "alembic.ini", workdir)
    shutil.copytree(ROOT / "migrations", workdir / "migrations")
    subprocess.run([str(venv / "bin" / "alembic"), "upgrade", "head"], cwd=workdir,
                   env=clean_env, check=True, capture_output=True)
    server = subprocess.Popen([str(venv / "bin" / "payletter-gateway"), "serve", "--host",
                               "127.0.0.1"], cwd=workdir, env=clean_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert ready.status_code == 200 and ready.json()["database"] == "ok"
        assert ready.headers["x-request-id"]
        login = httpx.get(f"http://127.0.0.1:{port}/ops/login", timeout=5)  # a template
        assert login.status_code == 200 and "id='sign-in'" in login.text
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly
    assert server.returncode in (0, -15), output
    assert "Application shutdown complete" in output
    assert '"level": "info"' in output  # LOG_FORMAT=json from compose: JSON lines


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_env_example_is_loadable_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copying .env.example to .env must give a working sim configuration."""
    for name in os.environ:
        if name.upper() in {n.upper() for n in Settings.model_fields}:
            monkeypatch.delenv(name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    monkeypatch.chdir(tmp_path)
    from app.settings import load_settings

    settings = load_settings()
    assert settings.payletter_env == "sim"
    assert settings.callback_networks  # not "nobody may call back"


def test_the_build_stage_copies_every_package_the_gateway_imports() -> None:
    """`pip install .` in the build stage packages what was copied; a package left out
    (demo, say) is missing at run time."""
    copied = {source for line in dockerfile_stages()["build"].instructions("COPY")
              for source in line.split()[:-1]}
    for package in ("app", "demo"):
        assert package in copied, package
