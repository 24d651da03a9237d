"""What a killed write leaves: a hidden temporary file named after its writer. The next write
of the same output removes it once its writer is gone, and nothing else: not a live
writer's (another job writing now), not another output's, not a file of another name."""
import os
import signal
import subprocess
import sys
import time

import pytest

from command_cases import run_in_process
from mdcsrn_tf import destinations, files

HOST = destinations._host()  # pylint: disable=protected-access
DAY = 24 * 3600
WRITER = """
import sys, time
from mdcsrn_tf import files
files.write_atomically(sys.argv[1], lambda temporary: time.sleep(120))
"""


def dead_pid() -> int:
  """The pid of a process that has ended."""
  process = subprocess.Popen([sys.executable, "-c", "pass"])
  process.wait()
  return process.pid


def writing(path):
  """A process writing `path` through files.write_atomically, and its temporary file, once
  that exists."""
  process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
  deadline = time.time() + 60
  while time.time() < deadline:
    found = [n for n in os.listdir(path.parent) if n.startswith(f".{path.name}.{process.pid}-")]
    if found:
      return process, path.parent / found[0]
    time.sleep(0.05)
  process.kill()
  raise AssertionError("the writer made no temporary file")


def test_a_rerun_removes_what_a_killed_run_left_and_keeps_a_live_writers(
    colin27_crop, generator_weights, tmp_path, monkeypatch, capsys):
  scan = colin27_crop(tmp_path / "scan.nii.gz")
  out = tmp_path / "out"
  out.mkdir()
  live, kept = writing(out / "scan_sr.nii.gz")  # another job, writing it now
  try:
    killed, left = writing(out / "scan_sr.nii.gz")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    others = [out / ".scan_sr.nii.gz.notes",
              out / f".other.nii.gz.{dead_pid()}-{HOST}.abcd1234.tmp"]
    for path in others:
      path.write_text("", encoding="utf-8")
    status, lines, _ = run_in_process(
        "predict", [str(scan), str(tmp_path / "b" / "scan.nii.gz"), "--out_dir", str(out),
                    "--weights", generator_weights, "--tile=32"], monkeypatch, capsys)
    assert status != 0  # the second input is missing: nothing is written, nothing removed
    assert left.exists()
    status, lines, _ = run_in_process(
        "predict", [str(scan), "--out_dir", str(out), "--weights", generator_weights,
                    "--tile=32"], monkeypatch, capsys)
    assert status == 0, lines
    assert not left.exists() and (out / "scan_sr.nii.gz").is_file()
    assert kept.exists() and all(path.exists() for path in others)
  finally:
    live.kill()
    live.wait()


def _temporary(folder, name, writer, age):
  """A temporary file of output NAME by `writer` ("PID-HOST", or "" for a name that does
  not say), last changed `age` seconds ago."""
  path = folder / f".{name}.{writer + '.' if writer else ''}k3x9_a2b.tmp.nii.gz"
  path.write_bytes(b"")
  os.utime(path, (time.time() - age, time.time() - age))
  return path


@pytest.mark.parametrize("writer, age, stale", [
    ("", 60, False),  # a version that did not name its process: kept while it may be live
    ("", 2 * DAY, True),
    ("{dead}-{host}", 60, True),  # its process is gone
    ("{parent}-{host}", 0, False),  # alive, and older than the file: the writer
    ("{later}-{host}", 3600, True),  # alive, but started after the file: a reused pid
    ("{dead}-elsewhere", 60, False),  # another host's: it cannot be asked
    ("{dead}-elsewhere", 2 * DAY, True),
], ids=["unnamed, fresh", "unnamed, old", "dead", "live writer", "reused pid",
        "other host, fresh", "other host, old"])
def test_a_temporary_is_stale_only_when_its_writer_is_gone(tmp_path, writer, age, stale):
  later = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    writer = writer.format(dead=dead_pid(), host=HOST, parent=os.getppid(), later=later.pid)
    path = _temporary(tmp_path, "sr.nii.gz", writer, age)
    files.write_text_atomically(tmp_path / "sr.nii.gz", "written")
    assert path.exists() != stale
  finally:
    later.kill()
    later.wait()


def test_a_killed_folder_write_is_removed_by_the_next_one(tmp_path):
  left = tmp_path / f".1.{dead_pid()}-{HOST}.ab12cd34.tmp"
  (left / "variables").mkdir(parents=True)
  files.write_folder_atomically(tmp_path / "1", lambda folder: None)
  assert sorted(os.listdir(tmp_path)) == ["1"]
