"""The API process never imports TensorFlow, Keras or worker code; models/ imports no service."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, tempfile
from fastapi.testclient import TestClient
from api.main import create_app
from api.migrate import upgrade
from api.settings import Settings
settings = Settings(data_dir=tempfile.mkdtemp())
upgrade(settings)
with TestClient(create_app(settings)) as client:
    assert client.get('/readyz').status_code == 200
    assert client.get('/openapi.json').status_code == 200
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'worker'))
print(','.join(heavy))
"""


def test_api_process_never_imports_tensorflow() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"API process imported: {result.stdout}"


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_imports_run_one_way() -> None:
    assert not _imports("api") & {"worker", "tensorflow", "keras"}
    assert not _imports("models") & {"api", "worker", "fastapi", "celery"}
