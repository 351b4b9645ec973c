"""`make image-check`: build both images for real, run them, pay an order through them.

What a user does with the images, on this machine, as far as it allows:

1. a Docker engine: the running one, else `dockerd` started here (installed from Debian when
   missing) with no iptables, no bridge and host networking only, stopped again at the end;
2. a base image: `python:3.11-slim-bookworm` when the registry answers, else one made here
   with Debian's debootstrap (bookworm + python3, venv, pip, CA certificates; this machine's
   CA bundle and pip's `cert` setting copied in so pip reaches the package index);
3. `docker build .` (the default target must be the gateway) and `--target simulator`;
4. on PostgreSQL: migrate with the image, start the simulator and the gateway containers on
   free loopback ports, wait for both healthchecks, create an order, approve it in the
   simulator, and read `GET /orders/{order_no}` until it says `paid`;
5. on SQLite: the image with its default DATABASE_URL on a named volume is healthy and keeps
   an order across a restart;
6. `docker stop` exits 0 within its 10 s; every log line is JSON; no secret in the logs;
7. `docker compose config` where Compose v2 is installed.

docs/container-check.md is rewritten from what this run saw, also when a step failed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from harness.postgres import PostgresServer, free_port

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "container-check.md"
ARTIFACTS = ROOT / "test-artifacts" / "image-check"
CACHE = ROOT / "var" / "image-check"
REGISTRY_BASE = "python:3.11-slim-bookworm"
LOCAL_BASE = "payletter-gateway-base:bookworm-python3"
GATEWAY_IMAGE = "payletter-gateway:check"
SIMULATOR_IMAGE = "payletter-simulator:check"
PREFIX = "pgw-check"
BASE_PACKAGES = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The legacy builder: BuildKit would pull its Dockerfile frontend from a registry.
DOCKER_ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}


class CheckFailed(Exception):
    """A step did not do what a user needs; the message says what was seen."""


@dataclass
class Step:
    name: str
    seconds: float
    detail: str
    ok: bool = True


@dataclass
class Report:
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    steps: list[Step] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        """Time a step; what the body appends to the yielded list becomes its detail."""
        detail: list[str] = []
        began = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            yield detail
        except BaseException as exc:
            detail.append(f"FAILED: {exc}")
            self.steps.append(Step(name, time.monotonic() - began, "; ".join(detail), False))
            raise
        self.steps.append(Step(name, time.monotonic() - began, "; ".join(detail)))
        print(f"   {'; '.join(detail)}", flush=True)


def run(args: list[str], report: Report | None = None, *, check: bool = True,
        timeout: float = 600, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    if report is not None:
        report.commands.append(" ".join(_shown(a) for a in args))
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                            env=DOCKER_ENV, check=False, cwd=ROOT)
    if log is not None:
        log.write_text(result.stdout + result.stderr)
    if check and result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise CheckFailed(f"`{' '.join(args[:4])} …` exited {result.returncode}:\n"
                          + "\n".join(tail))
    return result


def _shown(arg: str) -> str:
    """A command as the report prints it: secrets and per-run values replaced."""
    for name in ("SHOP_API_TOKEN", "OPS_API_TOKEN"):
        if arg.startswith(f"{name}="):
            return f"{name}=<random>"
    return arg


# ---- 1. the engine ----------------------------------------------------------------------


def docker_answers() -> bool:
    with suppress(OSError, subprocess.TimeoutExpired):
        return run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False,
                   timeout=20).returncode == 0
    return False


@contextmanager
def docker_engine(report: Report) -> Iterator[None]:
    if docker_answers():
        report.facts["engine"] = "the Docker engine that was already running (left running)"
        yield
        return
    with report.step("start a Docker engine") as detail:
        if shutil.which("dockerd") is None:
            apt_install(["docker.io"], detail)
        data = CACHE / "docker"
        data.mkdir(parents=True, exist_ok=True)
        log = (ARTIFACTS / "dockerd.log").open("w")
        # Never touch the machine's network: no iptables rules, no bridge; containers and
        # builds use the host's network namespace.
        daemon = subprocess.Popen(
            ["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
             "--data-root", str(data)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not docker_answers():
            if daemon.poll() is not None or time.monotonic() > deadline:
                daemon.kill()
                raise CheckFailed("dockerd did not start; see test-artifacts/image-check/"
                                  "dockerd.log")
            time.sleep(0.5)
        version = run(["docker", "version", "--format",
                       "client {{.Client.Version}}, engine {{.Server.Version}}"]).stdout.strip()
        detail.append(f"dockerd --iptables=false --ip6tables=false --bridge=none ({version})")
        report.facts["engine"] = f"dockerd started by the check and stopped after it ({version})"
    try:
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()


def apt_install(packages: list[str], detail: list[str]) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise CheckFailed(f"{', '.join(packages)} missing; install them (Debian: apt-get "
                          f"install {' '.join(packages)}) or run this as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
                   env=env, check=True, capture_output=True)
    detail.append(f"installed {', '.join(packages)} from Debian")


# ---- 2. the base image ------------------------------------------------------------------


def base_image(report: Report) -> str:
    with report.step("base image") as detail:
        if run(["docker", "image", "inspect", REGISTRY_BASE], check=False).returncode == 0:
            detail.append(f"{REGISTRY_BASE} (already present)")
            return REGISTRY_BASE
        pulled = run(["docker", "pull", REGISTRY_BASE], check=False, timeout=120)
        if pulled.returncode == 0:
            detail.append(f"{REGISTRY_BASE} pulled from the registry")
            return REGISTRY_BASE
        why = (pulled.stderr.strip().splitlines() or ["no answer"])[-1][:160]
        detail.append(f"{REGISTRY_BASE} cannot be pulled ({why})")
        if run(["docker", "image", "inspect", LOCAL_BASE], check=False).returncode == 0:
            detail.append(f"{LOCAL_BASE} made by an earlier run (debootstrap), reused")
            return LOCAL_BASE
        rootfs = debootstrap_rootfs(detail)
        with rootfs.open("rb") as archive:
            subprocess.run(
                ["docker", "import",
                 "--change", f"ENV PATH={BASE_PATH}",
                 "--change", "ENV LANG=C.UTF-8",
                 "--change", 'CMD ["python3"]', "-", LOCAL_BASE],
                stdin=archive, env=DOCKER_ENV, check=True, capture_output=True)
        detail.append(f"imported as {LOCAL_BASE}")
        return LOCAL_BASE


def debootstrap_rootfs(detail: list[str]) -> Path:
    """Debian bookworm with python3 as a tar archive, kept in var/ for the next run."""
    archive = CACHE / "bookworm-python3.tar"
    if archive.exists():
        detail.append(f"rootfs from an earlier run ({archive.relative_to(ROOT)})")
        return archive
    if shutil.which("debootstrap") is None:
        apt_install(["debootstrap"], detail)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pgw-rootfs-") as tmp:
        target = Path(tmp) / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}",
                        "bookworm", str(target), "http://deb.debian.org/debian"],
                       check=True, capture_output=True, timeout=1800)
        # pip inside the build reaches the index the way this machine does: same CA bundle
        if HOST_CA_BUNDLE.exists():
            shutil.copy(HOST_CA_BUNDLE, target / "etc/ssl/certs/ca-certificates.crt")
        (target / "etc/pip.conf").write_text(
            "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (target / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-C", str(target), "-cf", str(archive), "."], check=True)
    detail.append(f"debootstrap --variant=minbase --include={BASE_PACKAGES} bookworm "
                  f"({time.monotonic() - began:.0f} s)")
    return archive


# ---- 3. the images ----------------------------------------------------------------------


def build_images(report: Report, base: str) -> None:
    # The gateway from scratch (--no-cache: the timing and the install are real); the
    # simulator then shares its build and base stages.
    for image, target in ((GATEWAY_IMAGE, None), (SIMULATOR_IMAGE, "simulator")):
        name = f"docker build {'--target ' + target if target else '--no-cache (default target)'}"
        with report.step(name) as detail:
            args = ["docker", "build", "--network", "host", "--build-arg",
                    f"PYTHON_IMAGE={base}", "-t", image]
            args += ["--target", target] if target else ["--no-cache"]
            run([*args, "."], report, timeout=1800,
                log=ARTIFACTS / f"build-{target or 'default'}.log")
            size = int(run(["docker", "image", "inspect", "--format", "{{.Size}}",
                            image]).stdout.strip())
            config = json.loads(run(["docker", "image", "inspect", "--format",
                                     "{{json .Config}}", image]).stdout)
            detail.append(f"{image}: {size / 1e6:.0f} MB, CMD {' '.join(config['Cmd'])}, "
                          f"user {config['User']}")
            report.facts[f"size {image}"] = f"{size / 1e6:.0f} MB"
            if target is None and config["Cmd"][:2] != ["payletter-gateway", "serve"]:
                raise CheckFailed(f"the default target is not the gateway: CMD {config['Cmd']}")


# ---- 4. PostgreSQL ----------------------------------------------------------------------


def postgres_admin_dsn() -> str:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        return given.replace("postgresql+asyncpg://", "postgresql://", 1)
    return "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database() -> Iterator[str]:
    """A database of its own on the server at postgres_admin_dsn(), dropped afterwards."""
    admin = postgres_admin_dsn()
    server = PostgresServer(admin_dsn=admin)
    try:
        url = server.create_database("pgw_image_check")
    except (OSError, asyncpg.PostgresError) as exc:
        raise CheckFailed(f"no PostgreSQL at {admin} ({exc}); set TEST_DATABASE_URL") from exc
    try:
        yield url
    finally:
        server.close()


# ---- containers -------------------------------------------------------------------------


@dataclass
class Container:
    name: str
    url: str
    started: float = field(default_factory=time.monotonic)

    def health(self) -> str:
        return run(["docker", "inspect", "--format", "{{.State.Health.Status}}",
                    self.name]).stdout.strip()

    def wait_healthy(self, timeout: float = 120) -> float:
        """Seconds from `docker run` to the first healthy check."""
        while (status := self.health()) != "healthy":
            if status == "unhealthy" or time.monotonic() - self.started > timeout:
                logs = run(["docker", "logs", "--tail", "30", self.name], check=False)
                raise CheckFailed(f"{self.name} is {status}:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.5)
        return time.monotonic() - self.started

    def logs(self) -> str:
        result = run(["docker", "logs", self.name])
        return result.stdout + result.stderr

    def stop(self, report: Report) -> tuple[float, int]:
        began = time.monotonic()
        run(["docker", "stop", self.name], report, timeout=60)
        seconds = time.monotonic() - began
        code = int(run(["docker", "inspect", "--format", "{{.State.ExitCode}}",
                        self.name]).stdout.strip())
        return seconds, code


def start_container(report: Report, name: str, image: str, env: dict[str, str],
                    port: int, volume: str | None = None) -> Container:
    args = ["docker", "run", "-d", "--name", name, "--network", "host"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    if volume:
        args += ["-v", f"{volume}:/srv/var"]
    run([*args, image], report)
    return Container(name, f"http://127.0.0.1:{port}")


def remove_leftovers() -> None:
    names = run(["docker", "ps", "-aq", "--filter", f"name={PREFIX}"], check=False).stdout.split()
    if names:
        run(["docker", "rm", "-f", *names], check=False)
    run(["docker", "volume", "rm", "-f", f"{PREFIX}-data"], check=False)


# ---- 5. the paid order ------------------------------------------------------------------


def order_body(order_no: str) -> dict[str, Any]:
    return {"order_no": order_no, "pgcode": "creditcard", "amount": 1000,
            "user_id": "image-check", "user_name": "Image Check",
            "product_name": "container check"}


def pay_an_order(gateway: Container, simulator: Container, shop: str, ops: str
                 ) -> dict[str, Any]:
    order_no = f"IMG{int(time.time())}"
    with httpx.Client(timeout=10) as http:
        created = http.post(f"{gateway.url}/orders", json=order_body(order_no),
                            headers={"authorization": f"Bearer {shop}"})
        if created.status_code != 201:
            raise CheckFailed(f"POST /orders answered {created.status_code}: {created.text}")
        token = created.json()["token"]
        approved = http.post(f"{simulator.url}/_sim/payments/{token}/approve")
        if approved.status_code != 200:
            raise CheckFailed(f"the simulator's approve answered {approved.status_code}")
        result = approved.json()
        back = http.post(result["return_url"], data=result["return_fields"])
        if back.status_code != 303:
            raise CheckFailed(f"the buyer's return answered {back.status_code}: {back.text}")
        deadline = time.monotonic() + 60
        while True:
            order = http.get(f"{gateway.url}/orders/{order_no}",
                             headers={"authorization": f"Bearer {ops}"}).json()
            kinds = {d["kind"] for d in order.get("deliveries", [])}
            if order.get("status") == "paid" and "callback" in kinds:
                return dict(order)
            if time.monotonic() > deadline:
                raise CheckFailed(f"order {order_no} is {order.get('status')}, deliveries "
                                  f"{sorted(kinds)} after 60 s")
            time.sleep(0.5)


def check_logs(text: str, name: str, secret_values: list[str]) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    if not_json:
        raise CheckFailed(f"{name}: {len(not_json)} of {len(lines)} log lines are not JSON, "
                          f"e.g. {not_json[0][:200]!r}")
    leaked = [value[:6] + "…" for value in secret_values if value in text]
    if leaked:
        raise CheckFailed(f"{name}: secrets in the logs: {leaked}")
    return f"{len(lines)} lines, all JSON, no secret"


# ---- the whole check --------------------------------------------------------------------


def check_containers(report: Report) -> None:
    sim_port = free_port()
    with report.step("start the simulator") as detail:
        simulator = start_container(
            report, f"{PREFIX}-simulator", SIMULATOR_IMAGE,
            {"SIM_PORT": str(sim_port), "SIM_PUBLIC_URL": f"http://127.0.0.1:{sim_port}",
             "SIM_CALLBACK_INTERVAL": "2"}, sim_port)
        detail.append(f"healthy {simulator.wait_healthy():.0f} s after docker run "
                      "(WEB_CONCURRENCY=1 from its stage, port from SIM_PORT)")
    check_postgres(report, simulator)
    check_sqlite(report, simulator)
    with report.step("docker stop the simulator") as detail:
        seconds, code = simulator.stop(report)
        if code != 0 or seconds >= 10:
            raise CheckFailed(f"{simulator.name}: exit code {code} after {seconds:.1f} s")
        detail.append(f"exit code {code} after {seconds:.1f} s; "
                      f"{len(simulator.logs().splitlines())} log lines (plain text: a demo "
                      "tool, no LOG_FORMAT)")


def gateway_env(port: int, simulator: Container) -> dict[str, str]:
    return {"PORT": str(port), "PAYLETTER_ENV": "sim",
            "PAYLETTER_BASE_URL": f"{simulator.url}/",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}


def stop_in_time(report: Report, container: Container) -> str:
    seconds, code = container.stop(report)
    if code != 0 or seconds >= 10:
        raise CheckFailed(f"{container.name}: exit code {code} after {seconds:.1f} s")
    return f"docker stop: exit code {code} after {seconds:.1f} s"


def check_postgres(report: Report, simulator: Container) -> None:
    shop, ops = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    port = free_port()
    with scratch_database() as database_url:
        with report.step("migrate PostgreSQL with the image") as detail:
            run(["docker", "run", "--rm", "--network", "host", "-e",
                 f"DATABASE_URL={database_url}", GATEWAY_IMAGE, "alembic", "upgrade", "head"],
                report)
            revisions = sorted(p.name[:4] for p in (ROOT / "migrations" / "versions").glob(
                "[0-9][0-9][0-9][0-9]_*.py"))
            detail.append(f"alembic upgrade head: {revisions[0]} → {revisions[-1]}")
        with report.step("the gateway on PostgreSQL") as detail:
            gateway = start_container(
                report, f"{PREFIX}-gateway", GATEWAY_IMAGE,
                {"DATABASE_URL": database_url, **gateway_env(port, simulator),
                 "SHOP_API_TOKEN": shop, "OPS_API_TOKEN": ops}, port)
            detail.append(f"healthy {gateway.wait_healthy():.0f} s after docker run "
                          "(WEB_CONCURRENCY=2 from the image)")
        with report.step("pay an order through the containers (PostgreSQL)") as detail:
            order = pay_an_order(gateway, simulator, shop, ops)
            deliveries = ", ".join(f"{d['kind']} {d['outcome']}" for d in order["deliveries"])
            detail.append(f"order {order['order_no']} {order['status']}, amount "
                          f"{order['amount']}, tid {order['tid']}; deliveries: {deliveries}")
            report.facts["paid order (PostgreSQL)"] = (
                f"`{order['order_no']}`: status `{order['status']}`, deliveries {deliveries}")
        with report.step("metrics across the two workers") as detail:
            for _ in range(20):  # each on a new connection, so both workers take some
                with httpx.Client(timeout=5) as http:
                    http.post(f"{gateway.url}/payletter/callback", json={"tid": "probe"})
            totals = set()
            with httpx.Client(timeout=5) as http:
                for _ in range(6):
                    text = http.get(f"{gateway.url}/metrics").text
                    totals.add(sum(float(v) for v in re.findall(
                        r"^gateway_deliveries_total\{.*\} (\S+)$", text, re.MULTILINE)))
            expected = len(order["deliveries"]) + 20
            if totals != {expected}:
                raise CheckFailed(f"gateway_deliveries_total over 6 scrapes: {totals}, "
                                  f"expected {expected} every time")
            detail.append(f"20 malformed callbacks, then 6 scrapes: gateway_deliveries_total "
                          f"= {totals.pop():.0f} every time ({expected} deliveries made)")
        with report.step("stop the gateway; its logs") as detail:
            detail.append(stop_in_time(report, gateway))
            detail.append(check_logs(gateway.logs(), "gateway", [shop, ops]))


def check_sqlite(report: Report, simulator: Container) -> None:
    port = free_port()
    volume = f"{PREFIX}-data"
    env = {**gateway_env(port, simulator), "WEB_CONCURRENCY": "1"}
    with report.step("the gateway on SQLite (its default DATABASE_URL, a named volume)"
                     ) as detail:
        first = start_container(report, f"{PREFIX}-sqlite", GATEWAY_IMAGE, env, port, volume)
        detail.append(f"healthy {first.wait_healthy():.0f} s after docker run (serve "
                      "migrated /srv/var/gateway.db)")
        order = pay_an_order(first, simulator, "sim-shop-token", "sim-ops-token")
        detail.append(f"order {order['order_no']} {order['status']}")
        report.facts["paid order (SQLite)"] = f"`{order['order_no']}`: status `{order['status']}`"
        detail.append(stop_in_time(report, first))
        first_logs = first.logs()
        run(["docker", "rm", first.name], report)
        second = start_container(report, f"{PREFIX}-sqlite", GATEWAY_IMAGE, env, port, volume)
        second.wait_healthy()
        with httpx.Client(timeout=10) as http:
            again = http.get(f"{second.url}/orders/{order['order_no']}",
                             headers={"authorization": "Bearer sim-ops-token"})
        if again.status_code != 200 or again.json()["status"] != "paid":
            raise CheckFailed(f"after a restart on the same volume the order reads "
                              f"{again.status_code} {again.text[:200]}")
        detail.append("a new container on the same volume still reads it paid")
        detail.append(stop_in_time(report, second))
        detail.append(check_logs(first_logs + second.logs(), "sqlite gateway", []))


def check_compose(report: Report) -> None:
    with report.step("docker compose config") as detail:
        version = run(["docker", "compose", "version"], check=False)
        if version.returncode != 0:
            detail.append("not run: Compose v2 (`docker compose`) is not installed here ("
                          + (version.stderr.strip().splitlines() or ["?"])[0][:120] + ")")
            return
        env = {"POSTGRES_PASSWORD": "check", "SHOP_API_TOKEN": "x" * 40,
               "OPS_API_TOKEN": "y" * 40}
        result = subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT,
                                env={**DOCKER_ENV, **env}, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise CheckFailed(f"docker compose config: {result.stderr.strip()[:300]}")
        detail.append(f"valid ({version.stdout.strip()})")


def write_report(report: Report, error: str | None) -> None:
    finished = datetime.now(UTC)
    total = (finished - report.started).total_seconds()
    lines = [
        "# Container check",
        "",
        "Written by `make image-check` (scripts/image_check.py) from its own run; do not edit.",
        "It builds both images for real, runs them and pays an order through them.",
        "",
        f"- Run: {report.started:%Y-%m-%d %H:%M} UTC, {total / 60:.1f} min in all; "
        f"**{'FAILED: ' + error if error else 'passed'}**",
    ]
    lines += [f"- {key[0].upper()}{key[1:]}: {value}" for key, value in report.facts.items()]
    lines += ["", "| step | seconds | what it saw |", "|---|---:|---|"]
    for step in report.steps:
        mark = "" if step.ok else "**failed** "
        lines.append(f"| {step.name} | {step.seconds:.0f} | {mark}"
                     f"{step.detail.replace('|', '/').replace(chr(10), ' ')} |")
    lines += ["", "Commands (tokens shown as `<random>`; ports are free ones picked per run):",
              "", "```sh", *report.commands, "```", ""]
    REPORT.write_text("\n".join(lines))


def main() -> int:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = Report()
    error = None
    try:
        with docker_engine(report):
            try:
                remove_leftovers()
                build_images(report, base_image(report))
                check_containers(report)
                check_compose(report)
            finally:
                remove_leftovers()
    except (CheckFailed, subprocess.CalledProcessError, subprocess.TimeoutExpired,
            httpx.HTTPError) as exc:
        error = str(exc).splitlines()[0][:300]
        print(f"image-check FAILED: {exc}", file=sys.stderr)
    write_report(report, error)
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 1 if error else 0


if __name__ == "__main__":
    raise SystemExit(main())
