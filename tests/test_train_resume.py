"""Resuming training: SIGTERM saves and SIGKILL loses only the steps since the last
checkpoint, one trainer per workdir (a killed one's lock is taken over), and damaged
checkpoints are skipped down to the newest intact one."""
import dataclasses
import glob
import json
import os
import signal
import subprocess
import time

import pytest

from mdcsrn_tf import files
from mdcsrn_tf.train import loop
from mdcsrn_tf.errors import InputError
from train_helpers import PYTHON, REPO, latest_step, smoke_config, train_cli


def _wait_for(path_glob_dir, pattern, process, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if os.path.isdir(path_glob_dir) and any(n.startswith(pattern) for n in os.listdir(path_glob_dir)):
      return
    assert process.poll() is None, process.communicate()
    time.sleep(0.2)
  raise AssertionError(f"no {pattern} in {path_glob_dir} after {timeout} s")


def test_sigterm_saves_and_sigkill_resumes(small_real_dataset, tmp_path):
  workdir = str(tmp_path / "run")
  command = train_cli("smoke_pretrain.cfg", small_real_dataset, workdir, "--steps=45",
                      "--checkpoint_every=10")
  first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
  _wait_for(os.path.join(workdir, "checkpoints"), "ckpt-10.index", first)
  first.send_signal(signal.SIGTERM)  # the loop runs: ckpt-10 exists, at any step from 10 on
  _, stderr = first.communicate(timeout=60)
  assert first.returncode == 128 + signal.SIGTERM, stderr
  stopped_at = latest_step(workdir)
  # the step the signal was answered at is the newest checkpoint's, whichever step it was
  assert stopped_at >= 10, stderr
  saved = os.path.join(workdir, "checkpoints", f"ckpt-{stopped_at}")
  assert f"at step {stopped_at}; checkpoint {saved} saved" in stderr
  assert "Traceback" not in stderr
  assert not os.path.exists(os.path.join(workdir, ".lock"))  # the workdir is free again

  second = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
  _wait_for(os.path.join(workdir, "checkpoints"), f"ckpt-{(stopped_at // 10 + 2) * 10}.index",
            second)
  second.kill()  # SIGKILL: nothing runs after it
  second.communicate()
  killed_at = latest_step(workdir)
  assert killed_at >= (stopped_at // 10 + 2) * 10

  third = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert third.returncode == 0, third.stderr
  assert f"resuming from {os.path.join(workdir, 'checkpoints', f'ckpt-{killed_at}')} at step " \
         f"{killed_at}" in third.stdout
  assert latest_step(workdir) == 45
  # without a terminal: no progress bar redraws, one line per summary
  assert "\r" not in third.stdout + third.stderr
  assert "step 45/45: generator/l1=" in third.stdout
  card = json.load(open(os.path.join(workdir, "export", "generator.json")))
  assert card["resumed_from_step"] == killed_at and card["training"]["steps"] == 45


HOLD_LOCK = """
import sys
from mdcsrn_tf.files import FolderLock
lock = FolderLock(sys.argv[1], "training workdir").acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_trainer_is_refused_and_a_killed_ones_lock_is_taken_over(
    small_real_dataset, tmp_path):
  workdir = tmp_path / "run"
  holder = subprocess.Popen([PYTHON, "-c", HOLD_LOCK, str(workdir)], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
  assert holder.stdout.readline() == "locked\n"  # holds the lock from now on
  second = subprocess.run(train_cli("smoke_pretrain.cfg", small_real_dataset, workdir), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  assert second.returncode == 2 and len(second.stderr.splitlines()) == 1, second.stderr
  assert second.stderr.startswith(f"error: {workdir}: training workdir in use by pid "
                                  f"{holder.pid} on ")
  assert sorted(os.listdir(workdir)) == [".lock"]  # the refused trainer wrote nothing
  holder.kill()  # SIGKILL: the lock file stays, the kernel's lock goes
  holder.communicate()
  assert f"pid {holder.pid} " in (workdir / ".lock").read_text()
  lock = files.FolderLock(workdir, "training workdir").acquire()
  assert f"pid {os.getpid()} " in (workdir / ".lock").read_text()
  lock.release()
  assert not os.listdir(workdir)  # released: the lock file goes with the lock


def _damage(prefix, how):
  """Damages checkpoint `prefix` as a full disk, a bad block or a failed copy would."""
  data = glob.glob(prefix + ".data-*")[0]
  if how == "truncated":
    with open(data, "r+b") as file:
      file.truncate(os.path.getsize(data) // 2)
  elif how == "checksum":
    with open(data, "r+b") as file:
      file.seek(os.path.getsize(data) // 3)
      file.write(b"\xff" * 64)
  else:
    open(prefix + ".index", "w").close()


def test_resume_skips_damaged_checkpoints_and_refuses_when_none_is_intact(
    small_real_dataset, tmp_path, capsys):
  config = smoke_config("smoke_pretrain.cfg", small_real_dataset, str(tmp_path), steps=4,
                         checkpoint_every=2, keep_checkpoints=3)
  loop.train(config)
  folder = str(tmp_path / "checkpoints")
  _damage(os.path.join(folder, "ckpt-4"), "truncated")
  capsys.readouterr()
  card = loop.train(dataclasses.replace(config, steps=5))
  out = capsys.readouterr().out
  warnings = [line for line in out.splitlines() if line.startswith("warning: checkpoint")]
  assert len(warnings) == 1 and os.path.join(folder, "ckpt-4") in warnings[0]
  assert f"resuming from {os.path.join(folder, 'ckpt-2')} at step 2" in out
  assert card.resumed_from_step == 2 and latest_step(str(tmp_path)) == 5

  for number, how in ((5, "index"), (4, "truncated"), (2, "checksum")):
    _damage(os.path.join(folder, f"ckpt-{number}"), how)
  with pytest.raises(InputError, match="none of its 3 checkpoints can be read"):
    loop.train(dataclasses.replace(config, steps=6))
