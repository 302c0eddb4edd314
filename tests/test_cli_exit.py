"""The CLI's process ends without the interpreter's teardown (`cli.exit_process`), and loses nothing by it:
the exit code, everything written to stdout and stderr, the atexit functions (temporary directories'
finalizers among them), and a thread still at work, which the exit waits for. Each case is a real
subprocess; the installed `newsingest` command goes the same way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)


def test_code_output_and_atexit_functions(tmp_path: Path):
    proc = python("""
        import atexit, sys, tempfile, pathlib
        from pipeline.cli import exit_process
        keep = tempfile.TemporaryDirectory(dir=".")  # its finalizer removes it at exit
        pathlib.Path(keep.name, "f").write_text("x")
        pathlib.Path("tmpdir").write_text(keep.name)
        atexit.register(lambda: pathlib.Path("atexit-ran").write_text("yes"))
        sys.stdout.write("o" * 300_000)  # no newline: still in the buffer
        sys.stderr.write("last words")
        exit_process(3)
        print("not reached")
    """, tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "o" * 300_000
    assert proc.stderr == "last words"
    assert (tmp_path / "atexit-ran").read_text() == "yes"
    assert not Path(tmp_path, (tmp_path / "tmpdir").read_text()).exists()


def test_waits_for_a_thread_at_work(tmp_path: Path):
    proc = python("""
        import pathlib, threading, time
        from pipeline.cli import exit_process

        def work():
            time.sleep(0.3)
            pathlib.Path("done").write_text("done")

        threading.Thread(target=work).start()
        exit_process(4)
    """, tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert (tmp_path / "done").read_text() == "done"


def test_a_profiler_gets_its_results(tmp_path: Path):
    # `python -m cProfile -o out -m pipeline.cli ...` writes its file after the code returns: no early exit then
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", "out.prof", "-m", "pipeline.cli", "clean", "--jsonl"],
                          input=json.dumps({"id": "a", "text": "Hello world."}) + "\n", capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.prof").stat().st_size > 0


def test_a_reader_gone_is_no_error(tmp_path: Path):
    # `newsingest ... | head -1`: the pipe closes before the exit flushes what is left
    script = "from pipeline.cli import exit_process; import sys; sys.stdout.write('line\\n' * 200_000); exit_process(0)"
    shell = f"{sys.executable} -c \"{script}\" | head -1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.stdout == "line\n"
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(shutil.which("newsingest") is None and not (Path(sys.executable).parent / "newsingest").exists(),
                    reason="the newsingest command is not installed next to this Python")
def test_installed_command(tmp_path: Path):
    exe = shutil.which("newsingest") or str(Path(sys.executable).parent / "newsingest")
    line = json.dumps({"id": "a", "text": "Hello world. This is a text."})
    good = subprocess.run([exe, "clean", "--jsonl"], input=line + "\n", capture_output=True, text=True, timeout=60)
    bad = subprocess.run([exe, "run", "--config", str(tmp_path / "missing.yaml"), "--warehouse", str(tmp_path / "wh")],
                         capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["text"] == "Hello world. This is a text."
    assert bad.returncode == 1
    assert "missing.yaml" in bad.stderr
