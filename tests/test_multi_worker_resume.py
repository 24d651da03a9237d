"""Two MultiWorkerMirroredStrategy workers on the loopback resume from one step: each
restores its own checkpoints folder, and a worker whose folder holds an older step than
the others' (stopped before its last save) makes them all fall back to the newest step
every worker holds; with no such step, every worker refuses alike instead of hanging."""
import json
import os
import socket
import subprocess
import sys
import types

import keras

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
config = types.SimpleNamespace(strategy="multi_worker", init_generator="")
for case in sys.argv[1:]:
  with strategy.scope():
    networks = tiny_networks()
  run = checkpoints.make(networks, os.path.join(case, f"worker{{index}}"), keep=5)
  try:
    checkpoints.restore(config, networks, run, print, strategy)
    print(json.dumps({{"case": case, "step": int(run.step.numpy()),
                      "kernel": float(networks.generator.weights[0].numpy().flat[0])}}))
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
  cases = {"behind": ([5, 10], [5]), "no_common_step": ([10], [5]), "agreed": ([5, 10], [5, 10])}
  for case, per_worker in cases.items():
    for index, steps in enumerate(per_worker):
      _write_checkpoints(tmp_path / case / f"worker{index}", steps)
  cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
  workers = []
  for index in range(2):
    env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                  "task": {"type": "worker", "index": index}})}
    workers.append(subprocess.Popen(
        [sys.executable, "-c", WORKER.format(tests=TESTS), *(str(tmp_path / c) for c in cases)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  outputs = [worker.communicate(timeout=300) for worker in workers]
  results = []
  for worker, (stdout, stderr) in zip(workers, outputs):
    assert worker.returncode == 0, stderr[-3000:]
    lines = stdout.splitlines()
    results.append({json.loads(line)["case"].rsplit("/", 1)[1]: json.loads(line)
                    for line in lines if line.startswith("{")})
    results[-1]["log"] = stdout
  for index, result in enumerate(results):
    assert (result["behind"]["step"], result["behind"]["kernel"]) == (5, 5.0)
    assert (result["agreed"]["step"], result["agreed"]["kernel"]) == (10, 10.0)
    assert "steps [10, 5]" in result["no_common_step"]["error"]
    assert f"worker{index}" in result["no_common_step"]["error"]
  assert "newest checkpoints are at steps [10, 5]" in results[0]["log"]
  assert "resuming from" in results[0]["log"] and f"worker0{os.sep}checkpoints{os.sep}ckpt-5" \
      in results[0]["log"]
