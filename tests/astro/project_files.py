"""Reading the Astro project's own files the way `astro dev start` uses them (Dockerfile ENV and
RUN lines, the compose template's components, docker-compose.override.yml), and exporting the
project as a fresh clone would have it. Shared by the parse checks, the image-fidelity test
and the container emulation, so all three read the files one way.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
IMAGE_HOME = "/usr/local/airflow"  # AIRFLOW_HOME and the project's folder in every Astro container
COMPOSE_TEMPLATE = Path(__file__).with_name("astro_compose.yaml")


@dataclass
class Dockerfile:
    base: str
    env: dict[str, str] = field(default_factory=dict)
    run: list[str] = field(default_factory=list)

    @property
    def runtime_tag(self) -> str:
        return self.base.rsplit(":", 1)[1]


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def read_dockerfile(root: Path = ROOT) -> Dockerfile:
    base, env, run = "", {}, []
    for word, rest in _instructions((root / "Dockerfile").read_text()):
        if word == "FROM":
            base = rest.split()[0]
        elif word == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                env[key] = value
        elif word == "RUN":
            run.append(rest)
    return Dockerfile(base, env, run)


def compose_template() -> dict:
    return yaml.safe_load(COMPOSE_TEMPLATE.read_text())


def read_override(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "docker-compose.override.yml").read_text()) or {}


def service_env(override: dict, service: str) -> dict[str, str]:
    env = (override.get("services", {}).get(service) or {}).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def service_volumes(override: dict, service: str) -> dict[str, str]:
    """Named volumes of a service: {volume name: mount path}."""
    named = set((override.get("volumes") or {}).keys())
    out = {}
    for item in (override.get("services", {}).get(service) or {}).get("volumes") or []:
        source, _, target = str(item).partition(":")
        if source in named:
            out[source] = target.split(":")[0]
    return out


def export_project(dest: Path, ref: str | None = None, root: Path = ROOT) -> Path:
    """The project as a fresh clone has it: `git archive <ref>`, or with no ref the files git
    would commit now (tracked and new, minus what .gitignore excludes), so a check run before a
    commit sees the change. Never build artefacts: they are git-ignored."""
    dest.mkdir(parents=True, exist_ok=True)
    if ref:
        data = subprocess.run(["git", "archive", "--format=tar", ref], cwd=root, check=True,
                              capture_output=True).stdout
        with tarfile.open(fileobj=BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
        return dest
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = root / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def in_container(value: str, home: Path) -> str:
    """A Dockerfile/compose value with the container's /usr/local/airflow mapped to `home`."""
    return value.replace(IMAGE_HOME, str(home))
