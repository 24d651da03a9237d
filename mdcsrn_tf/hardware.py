"""What a run ran on, for model cards and benchmark records, and the memory it has."""
import os
import platform
import subprocess
import threading
import time


def cpu_model() -> str:
  if os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
      for line in cpuinfo:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  return platform.processor() or platform.machine()


def _cpuinfo() -> dict:
  """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
  fields = {}
  if os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
      for line in cpuinfo:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
  return fields


def cpu_flags() -> set:
  """The CPU's feature flags as /proc/cpuinfo names them ("avx2", "avx512f", ...)."""
  return set(_cpuinfo().get("flags", "").split())


def cpu_vectors() -> str:
  """The widest vector instructions the CPU offers, and its family/model numbers: "AMD EPYC"
  names Zen 2 to Zen 5, whose FP32 peaks differ by 2x (AVX2, AVX-512 on 256-bit units or
  on 512-bit ones). ONEDNN_MAX_CPU_ISA, when set, caps what oneDNN uses."""
  fields = _cpuinfo()
  flags = set(fields.get("flags", "").split())
  widest = next((f for f in ("avx512_bf16", "avx512f", "avx2") if f in flags), "none")
  cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
  return (f"{widest} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')})"
          + (f", oneDNN capped at {cap}" if cap else ""))


def machine() -> dict:
  """CPU model, vector instructions and cores, GPU names, TensorFlow version and oneDNN
  setting."""
  import tensorflow as tf  # only here: the other functions serve commands before it loads

  gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
          for gpu in tf.config.list_physical_devices("GPU")]
  return {"host": platform.node(), "cpu": cpu_model(), "cpu_vectors": cpu_vectors(),
          "cpu_cores": os.cpu_count(), "gpus": gpus, "tensorflow": tf.__version__,
          "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")}


def available_memory(meminfo="/proc/meminfo", proc_cgroup="/proc/self/cgroup",
                     cgroup_root="/sys/fs/cgroup"):
  """Bytes of memory a new process can use: what the kernel says is available
  (MemAvailable), or less where the process's memory cgroup allows less (a batch job's
  --mem, a container's limit); None where neither says (not Linux)."""
  known = [cgroup_headroom(proc_cgroup, cgroup_root)]
  try:
    with open(meminfo, encoding="ascii") as file:
      fields = dict(line.split(":", 1) for line in file if ":" in line)
    known.append(int(fields["MemAvailable"].split()[0]) * 1024)
  except (OSError, KeyError, ValueError):
    pass
  known = [value for value in known if value is not None]
  return min(known) if known else None


def _read_text(path) -> str:
  with open(path, encoding="ascii") as file:
    return file.read().strip()


def cgroup_headroom(proc_cgroup="/proc/self/cgroup", cgroup_root="/sys/fs/cgroup"):
  """Bytes the process's memory cgroups still allow: limit less usage, the tightest of its
  cgroup and their ancestors (cgroup v2's memory.max, v1's memory.limit_in_bytes); None
  without a limit."""
  try:
    lines = _read_text(proc_cgroup).splitlines()
  except OSError:
    return None
  headroom = []
  for line in lines:
    _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
    if controllers == "":  # v2, mounted alone or beside v1 as "unified"
      roots, files = [cgroup_root, os.path.join(cgroup_root, "unified")], ("memory.max",
                                                                          "memory.current")
    elif "memory" in controllers.split(","):
      roots = [os.path.join(cgroup_root, "memory")]
      files = ("memory.limit_in_bytes", "memory.usage_in_bytes")
    else:
      continue
    parts = [part for part in path.split("/") if part]
    for root in roots:
      for depth in range(len(parts), -1, -1):
        folder = os.path.join(root, *parts[:depth])
        try:
          limit, usage = (_read_text(os.path.join(folder, name)) for name in files)
        except OSError:
          continue
        if limit.isdigit() and usage.isdigit() and int(limit) < 2**60:  # v1: 2^63 is none
          headroom.append(max(int(limit) - int(usage), 0))
  return min(headroom) if headroom else None


def run_measuring_memory(command, poll_seconds=0.05, **popen_options) -> dict:
  """Runs `command` to its end: {"returncode", "lines": [(seconds since launch, stdout line)],
  "stderr", "wall_seconds", "peak_rss_mib"}.

  The peak is the child's own high-water mark (VmHWM), polled while it runs: the rusage of
  wait4 would not do, since Linux carries the parent's peak into a forked child across exec.
  """
  started = time.perf_counter()
  process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, **popen_options)
  lines, stderr = [], []
  readers = [threading.Thread(target=lambda: lines.extend(
                 (time.perf_counter() - started, line.rstrip("\n")) for line in process.stdout)),
             threading.Thread(target=lambda: stderr.append(process.stderr.read()))]
  for reader in readers:
    reader.start()
  peak_kib = 0
  while process.poll() is None:
    peak_kib = max(peak_kib, _high_water_kib(process.pid))
    time.sleep(poll_seconds)
  for reader in readers:
    reader.join()
  return {"returncode": process.returncode, "lines": lines, "stderr": "".join(stderr),
          "wall_seconds": time.perf_counter() - started, "peak_rss_mib": peak_kib / 1024}


def _high_water_kib(pid) -> int:
  try:
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
      for line in status:
        if line.startswith("VmHWM:"):
          return int(line.split()[1])
  except OSError:  # the process has just ended
    pass
  return 0
