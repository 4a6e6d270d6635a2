"""What can be checked of the Astro image without Docker: the base tag's Airflow and Python are
the ones requirements-lock.txt was resolved and tested with, requirements.txt resolves together
with that Airflow for that Python, packages.txt names Debian packages that exist, and every
path the Dockerfile's ENV names exists in the repository or is made by the Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from tests.astro.project_files import IMAGE_HOME, ROOT, read_dockerfile, read_override, service_volumes

# Astro Runtime release -> the Apache Airflow it ships (Astro's runtime release notes). A new FROM
# tag must be added here, which makes whoever bumps it check the lock against it.
RUNTIME_AIRFLOW = {"3.3-2": "3.3.2"}
TAG = re.compile(r"^(?P<release>\d+\.\d+-\d+)(?:-python-(?P<python>\d+\.\d+))?$")


def lock_pin(name: str) -> str:
    match = re.search(rf"^{re.escape(name)}==(\S+)", (ROOT / "requirements-lock.txt").read_text(), re.M)
    assert match, f"{name} is not pinned in requirements-lock.txt"
    return match.group(1)


def lock_python() -> str:
    """The Python the lock is resolved for (`make lock`) and the one bootstrap.sh insists on."""
    version = re.search(r"--python-version (\d+\.\d+)", (ROOT / "Makefile").read_text()).group(1)
    assert f"sys.version_info[:2] != ({version.replace('.', ', ')})" in (ROOT / "scripts" / "bootstrap.sh").read_text()
    return version


def test_base_image_runs_the_airflow_and_python_the_lock_was_tested_with():
    dockerfile = read_dockerfile()
    assert dockerfile.base.startswith("astrocrpublic.azurecr.io/runtime:"), dockerfile.base
    tag = TAG.match(dockerfile.runtime_tag)
    assert tag, f"unexpected runtime tag {dockerfile.runtime_tag}"
    assert tag["release"] in RUNTIME_AIRFLOW, f"add runtime {tag['release']}'s Airflow version to RUNTIME_AIRFLOW"
    assert RUNTIME_AIRFLOW[tag["release"]] == lock_pin("apache-airflow")
    assert tag["python"] == lock_python(), \
        f"the image's Python is {tag['python'] or 'the runtime default'}, the lock's {lock_python()}: pin the variant"
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" == lock_python()


def test_requirements_resolve_with_the_runtimes_airflow_for_its_python(tmp_path):
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    airflow = RUNTIME_AIRFLOW[TAG.match(read_dockerfile().runtime_tag)["release"]]
    requirements = tmp_path / "image-requirements.txt"
    requirements.write_text((ROOT / "requirements.txt").read_text() + f"\napache-airflow=={airflow}\n")
    base = [uv, "pip", "compile", str(requirements), "--python-version", lock_python(), "--no-header", "--quiet",
            "-o", str(tmp_path / "resolved.txt")]
    result = subprocess.run(base, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 and re.search(r"(?i)network|connect|dns|timed out|offline", result.stderr):
        result = subprocess.run([*base, "--offline"], capture_output=True, text=True, timeout=300)
        if result.returncode != 0 and "offline" in result.stderr.lower():
            pytest.skip(f"no index reachable and no cached metadata: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr[-2000:]
    resolved = (tmp_path / "resolved.txt").read_text()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        pin = re.sub(r"\[[^\]]*\]", "", line.split("#")[0]).strip()  # the resolved list names no extras
        if pin:
            assert re.search(rf"(?im)^{re.escape(pin)}$", resolved), f"{pin} moved when resolved with apache-airflow=={airflow}"


def test_packages_txt_names_debian_packages_that_exist():
    names = [l.split("#")[0].strip() for l in (ROOT / "packages.txt").read_text().splitlines()]
    names = [n for n in names if n]
    if not shutil.which("apt-cache"):
        pytest.skip("no apt-cache on this machine")
    missing = []
    for name in names:
        out = subprocess.run(["apt-cache", "policy", name], capture_output=True, text=True).stdout
        if "Candidate:" not in out or "Candidate: (none)" in out:
            missing.append(name)
    if missing and not any(Path("/var/lib/apt/lists").glob("*Packages*")):
        pytest.skip("apt package lists are empty: run `apt-get update` to check packages.txt")
    assert not missing, f"packages.txt names packages Debian does not have: {missing}"


def test_every_path_the_dockerfile_names_exists_or_is_made_by_it():
    dockerfile = read_dockerfile()
    made = set(re.findall(r"mkdir -p (\S+)", " ".join(dockerfile.run)))
    volumes = {t for s in ("scheduler", "dag-processor", "api-server", "triggerer")
               for t in service_volumes(read_override(), s).values()}
    built = {str(PurePosixPath(dockerfile.env["DBT_MANIFEST_PATH"]))} if "dbt_project" in " ".join(dockerfile.run) else set()
    problems = []
    for key, value in dockerfile.env.items():
        for path in value.split(":") if key == "PYTHONPATH" else [value]:
            if not path.startswith(IMAGE_HOME):
                continue
            if path in built or any(PurePosixPath(path).is_relative_to(p) for p in made | volumes):
                continue
            if not (ROOT / PurePosixPath(path).relative_to(IMAGE_HOME)).exists():
                problems.append(f"{key}={path}")
    assert not problems, f"the Dockerfile names paths the repository does not have: {problems}"
    if dockerfile.env.get("JAVA_HOME") == "/usr/lib/jvm/default-java":  # Debian's default-jre makes it
        assert "default-jre-headless" in (ROOT / "packages.txt").read_text()
