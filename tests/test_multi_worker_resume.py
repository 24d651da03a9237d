"""Two MultiWorkerMirroredStrategy workers on the loopback resume from one step: each
restores its own checkpoints folder, and a worker whose folder holds an older step than
the others' (stopped before its last save) makes them all fall back to the newest step
every worker holds. Whatever one worker cannot do (read its checkpoints, find that step,
load --init_generator), every worker stops on, in one error line, instead of leaving the
others waiting in a collective."""
import json
import os
import socket
import subprocess
import sys
import types

import keras
import tensorflow as tf

from mdcsrn_tf.train import checkpoints

TESTS = os.path.dirname(os.path.abspath(__file__))
WORKER = """
import json, os, sys, types
sys.path.insert(0, {tests!r})
import tensorflow as tf
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.train import checkpoints
from test_multi_worker_resume import tiny_networks

strategy = tf.distribute.MultiWorkerMirroredStrategy()
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
for case in sys.argv[1:]:
  init = os.path.join(case, f"init{{index}}") if "init" in os.path.basename(case) else ""
  config = types.SimpleNamespace(strategy="multi_worker", init_generator=init,
                                 unverified_weights=False)
  with strategy.scope():
    networks = tiny_networks()
  run = checkpoints.make(networks, os.path.join(case, f"worker{{index}}"), keep=5)
  try:
    checkpoints.restore(config, networks, run, print, strategy)
    print(json.dumps({{"case": case, "step": int(run.step.numpy()),
                      "kernel": float(networks.generator.weights[0].numpy().flat[0]),
                      "last_good": run.last_good()}}))
  except InputError as error:
    print(json.dumps({{"case": case, "error": str(error)}}))
"""


def tiny_networks():
  """A one-weight generator and its optimiser, in the form checkpoints.make takes."""
  generator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
  return types.SimpleNamespace(generator=generator, critic=None,
                               generator_optimizer=keras.optimizers.Adam())


def _write_checkpoints(folder, steps):
  """Checkpoints of `steps` whose one weight equals the step, so a restore shows which."""
  networks = tiny_networks()
  run = checkpoints.make(networks, str(folder), keep=5)
  for step in steps:
    networks.generator.weights[0].assign([[float(step)]])
    run.step.assign(step)
    run.recent.save(checkpoint_number=step)


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for sock in sockets:
    sock.bind(("127.0.0.1", 0))
  ports = [sock.getsockname()[1] for sock in sockets]
  for sock in sockets:
    sock.close()
  return ports


def test_workers_at_different_steps_resume_together_or_refuse_together(tmp_path):
  cases = {"behind": ([5, 10], [5]), "no_common_step": ([10], [5]), "agreed": ([5, 10], [5, 10]),
           "one_without": ([5], []), "damaged": ([5], [5]), "init_on_one": ([], [])}
  for case, per_worker in cases.items():
    for index, steps in enumerate(per_worker):
      _write_checkpoints(tmp_path / case / f"worker{index}", steps)
  open(tmp_path / "damaged" / "worker1" / "checkpoints" / "ckpt-5.index", "w").close()
  _write_checkpoints(tmp_path / "init_on_one" / "init0", [7])  # worker 1's is missing
  cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
  workers = []
  try:
    for index in range(2):
      env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                    "task": {"type": "worker", "index": index}})}
      workers.append(subprocess.Popen(
          [sys.executable, "-c", WORKER.format(tests=TESTS),
           *(str(tmp_path / case) for case in cases)],
          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=300) for worker in workers]
  finally:
    for worker in workers:
      worker.kill()
  results = []
  for worker, (stdout, stderr) in zip(workers, outputs):
    assert worker.returncode == 0, stderr[-3000:]
    results.append({os.path.basename(json.loads(line)["case"]): json.loads(line)
                    for line in stdout.splitlines() if line.startswith("{")})
    results[-1]["log"] = stdout.splitlines()
  for index, result in enumerate(results):
    folder = tmp_path / "no_common_step" / f"worker{index}" / "checkpoints"
    assert (result["behind"]["step"], result["behind"]["kernel"]) == (5, 5.0)
    assert (result["agreed"]["step"], result["agreed"]["kernel"]) == (10, 10.0)
    assert result["no_common_step"]["error"] == (
        f"{folder}: the workers' newest checkpoints are at "
        "steps [10, 5] (one per replica, in task order) and not every worker can read step "
        "5; give the workers the same checkpoints or start a new --workdir")
    assert "steps [5, 0] (one per replica, in task order) and some hold none" in \
        result["one_without"]["error"]
  damaged = str(tmp_path / "damaged" / "worker1" / "checkpoints")
  assert results[1]["damaged"]["error"].startswith(f"{damaged}: none of its 1 checkpoints")
  assert results[0]["damaged"]["error"] == (
      "replica(s) [1] of the multi-worker run could not read their checkpoints; their "
      "workers' error lines say why")
  assert results[1]["init_on_one"]["error"] == (
      f"{tmp_path / 'init_on_one' / 'init1'}: neither exported weights nor a training workdir")
  assert results[0]["init_on_one"]["error"] == (
      "replica(s) [1] of the multi-worker run could not start the generator from "
      "--init_generator; their workers' error lines say why")
  behind = tmp_path / "behind" / "worker0" / "checkpoints" / "ckpt-5"
  assert "warning: the workers' newest checkpoints are at steps [10, 5] (one per replica, " \
         "in task order); all resume from step 5, the newest every worker holds" in results[0]["log"]
  assert f"resuming from {behind} at step 5" in results[0]["log"]
  # the step-10 checkpoint left the run (kept aside): nothing names it as the last good one
  assert results[0]["behind"]["last_good"] == str(behind)
  assert tf.train.latest_checkpoint(behind.parent) == str(behind)
  assert checkpoints.saved_in(str(behind.parent)) == [str(behind)]
  assert sorted(os.listdir(behind.parent / "abandoned-1")) == sorted(
      name.replace("-5.", "-10.") for name in os.listdir(behind.parent)
      if name.startswith("ckpt-5."))
  assert results[0]["agreed"]["last_good"] == str(
      tmp_path / "agreed" / "worker0" / "checkpoints" / "ckpt-10")
