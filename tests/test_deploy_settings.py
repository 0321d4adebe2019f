"""Secure defaults: no built-in production secret (DEBUG off without SECRET_KEY stops start-up), `check --deploy`
clean in the documented production settings (docs/web.md), and compose binds to 127.0.0.1 with secrets taken from
the environment. Every way the project starts brings its own SECRET_KEY or DEBUG."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "cinr.example.org", "CINR_TLS": "1"}


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """python manage.py <args> with the project's own settings and only the given deployment variables."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("SECRET_KEY", "DEBUG", "CINR_TLS", "ALLOWED_HOSTS", "DATABASE_URL")}
    base.update(DJANGO_SETTINGS_MODULE="cinr_web.settings", CINR_VAR_DIR=str(tmp_path), **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=120)


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(tmp_path):
    missing = manage(tmp_path, "check")
    assert missing.returncode != 0 and "SECRET_KEY is not set" in missing.stderr
    from django.conf import settings

    development = manage(tmp_path, "check", SECRET_KEY=settings.DEVELOPMENT_SECRET_KEY)
    assert development.returncode != 0 and "SECRET_KEY is not set (or is the development key)" in development.stderr
    debug = manage(tmp_path, "check", DEBUG="1")
    assert debug.returncode == 0, debug.stderr[-2000:]


def test_it_passes_check_deploy_in_the_documented_production_settings(tmp_path):
    production = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert production.returncode == 0, production.stderr[-3000:]
    assert "no issues" in production.stdout
    without_tls = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING",
                         **{k: v for k, v in PRODUCTION.items() if k != "CINR_TLS"})
    assert without_tls.returncode != 0
    assert {"security.W004", "security.W008", "security.W012", "security.W016"} <= set(
        re.findall(r"security\.W\d+", without_tls.stderr + without_tls.stdout))


def test_it_documents_the_production_settings():
    web = (ROOT / "docs" / "web.md").read_text()
    for variable in ("SECRET_KEY", "CINR_TLS", "ALLOWED_HOSTS", "check --deploy"):
        assert variable in web, variable


def test_it_binds_compose_to_localhost_and_takes_its_secrets_from_the_environment():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in compose and "change-this" not in compose
    assert re.search(r'-\s*"\$\{CINR_BIND:-127\.0\.0\.1\}:8000:8000"', compose)
    for secret in ("SECRET_KEY", "POSTGRES_PASSWORD", "CINR_ADMIN_PASSWORD"):
        assert re.search(rf"\$\{{{secret}:\?", compose), secret  # required: compose stops when it is unset
        assert not re.search(rf"\$\{{{secret}:-", compose), secret  # never a default
    assert "POSTGRES_PASSWORD: cinr\n" not in compose and "cinr:cinr@" not in compose


def test_it_gives_every_way_of_starting_a_key_or_debug():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'DJANGO_SETTINGS_MODULE = "cinr_web.settings_tests"' in pyproject
    assert "SECRET_KEY" in (ROOT / "cinr_web" / "settings_tests.py").read_text()
    demo = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1]
    assert "secret-key.txt" in demo and "export SECRET_KEY" in demo


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="needs bash")
def test_it_keeps_one_generated_demo_key(tmp_path):
    recipe = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1]
    block = re.search(r'\tif \[ -z "\$\$SECRET_KEY" \]; then \\\n(.*?)\tfi; \\\n', recipe, re.S)
    assert block, "the demo recipe generates SECRET_KEY when it is unset"
    shell = ("if [ -z \"$$SECRET_KEY\" ]; then \\\n" + block.group(1) + "fi; echo $$SECRET_KEY")
    shell = shell.replace("$$", "$").replace("$(BIN)/python", sys.executable).replace("\\\n", "\n").replace("\t", "")
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | {"CINR_VAR_DIR": str(tmp_path)}
    first = subprocess.run(["bash", "-c", shell], env=env, capture_output=True, text=True, check=True).stdout.strip()
    again = subprocess.run(["bash", "-c", shell], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert len(first) >= 50 and first == again
    assert oct((tmp_path / "secret-key.txt").stat().st_mode & 0o777) == "0o600"
