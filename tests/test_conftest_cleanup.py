"""The test set-up's cache folder: a session points every cache into its own folder and removes it.

A real pytest session runs in a subprocess with a copy of ``tests/conftest.py``; its one test writes
into the cache folder and reports where it is. Afterwards that folder must be gone, while the
folder of this session and a sibling ``lcb-test-cache-*`` folder (another session's) must remain.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import conftest

_CACHE_VARS = ("TORCH_HOME", "HF_HOME", "WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "XDG_CACHE_HOME")

_PROBE = '''
import json, os
from pathlib import Path

import conftest


def test_probe():
    root = Path(conftest._CACHE_ROOT)
    torch_home = Path(os.environ["TORCH_HOME"])
    torch_home.mkdir(parents=True)
    (torch_home / "weights.bin").write_bytes(b"x" * 1024)
    report = {
        "root": str(root),
        "existed": root.is_dir(),
        "caches": [os.environ[name] for name in %r],
    }
    Path(os.environ["PROBE_REPORT"]).write_text(json.dumps(report))
''' % (_CACHE_VARS,)


def test_a_session_removes_its_own_cache_folder_and_no_other(tmp_path):
    shutil.copy(Path(conftest.__file__), tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_probe.py").write_text(_PROBE)
    report_file = tmp_path / "report.json"
    env = {name: value for name, value in os.environ.items() if name not in _CACHE_VARS}
    env["PROBE_REPORT"] = str(report_file)
    other_session = Path(tempfile.mkdtemp(prefix="lcb-test-cache-"))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_probe.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(report_file.read_text())
        root = Path(report["root"])
        assert root.name.startswith("lcb-test-cache-") and report["existed"]
        assert all(Path(cache).parent == root for cache in report["caches"])
        assert not root.exists()
        assert other_session.is_dir()
        assert Path(conftest._CACHE_ROOT).is_dir()
    finally:
        shutil.rmtree(other_session, ignore_errors=True)
