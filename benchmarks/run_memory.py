"""The memory mdcsrn-sr holds per voxel of the HR grid, the figures infer/grids.py checks a
run against before the network loads: the grid change's interpolation (zero-filled, 2 x 2
x 1), then the passes (one, or test-time augmentation's 2, 4 and 8), each case in a fresh
process, on a 256 x 256 x 300 grid (19.7 M voxels) and a one-layer network (the network's
tiles are bounded by --memory_limit apart from this).

  python benchmarks/run_memory.py [--out benchmarks/results/run_memory.json]

Each figure is the process's peak resident memory (VmHWM, reset before the phase) above
what it held before the volume was read, per HR voxel.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HR_SHAPE = (256, 256, 300)
CASES = [(1, False), (2, False), (4, False), (8, False), (1, True), (8, True)]

MEASURE = r"""
import json, os, sys
import numpy as np
import nibabel as nib

def resident():
  fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
  return [int(fields[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM")]

def reset_peak():
  with open("/proc/self/clear_refs", "w") as file:
    file.write("5")

passes, grid_change, path = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
import keras
from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.data import intensity, kspace
from mdcsrn_tf.infer import predict, tta
acquisition = Acquisition((2, 2, 1), placement="zero_filled")
inputs = keras.Input((None, None, None, 1))
model = keras.Model(inputs, keras.layers.Conv3D(1, 1)(inputs))
small = np.random.default_rng(0).random((40, 40, 40), dtype=np.float32)  # warm-up: TF's own
tta.super_resolve(model, small, 64, 3, 1, None, passes, (0, 1), False)
kspace.upsample(small[:8, :8, :8], (16, 16, 8), axes=(0, 1), placement="zero_filled")
before, _ = resident()
reset_peak()
volume, _, _ = predict.load_input(path, (2, 2, 1) if grid_change else None, None, acquisition)
_, grid_peak = resident()
normalised, mapping = intensity.normalise(volume)
mean, spread = tta.super_resolve(model, normalised, 64, 3, 1, None, passes, (0, 1), False)
output = intensity.denormalise(mean, mapping)
if spread is not None:
  spread = spread * np.float32(mapping.scale)
_, peak = resident()
print(json.dumps({"passes": passes, "grid_change": grid_change, "voxels": volume.size,
                  "grid_change_bytes_per_voxel": (grid_peak - before) / volume.size,
                  "bytes_per_voxel": (peak - before) / volume.size}))
"""


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(HERE, "results", "run_memory.json"))
  parser.add_argument("--scratch", default="/tmp", help="folder for the two input volumes")
  args = parser.parse_args(argv)
  sys.path.insert(0, HERE)
  import nibabel as nib  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  import machine  # pylint: disable=import-outside-toplevel
  from mdcsrn_tf.infer import grids  # pylint: disable=import-outside-toplevel

  paths = {}
  for grid_change in (False, True):
    shape = (HR_SHAPE[0] // 2, HR_SHAPE[1] // 2, HR_SHAPE[2]) if grid_change else HR_SHAPE
    paths[grid_change] = os.path.join(args.scratch, f"run_memory_{grid_change:d}.nii")
    volume = np.random.default_rng(0).random(shape, dtype=np.float32) + 0.5
    nib.save(nib.Nifti1Image(volume, np.eye(4)), paths[grid_change])
  rows = []
  try:
    for passes, grid_change in CASES:
      result = subprocess.run([sys.executable, "-c", MEASURE, str(passes), str(int(grid_change)),
                               paths[grid_change]], capture_output=True, text=True, check=True)
      row = json.loads(result.stdout.splitlines()[-1])
      row["checked_bytes_per_voxel"] = grids.bytes_per_voxel(grid_change, passes)
      rows.append(row)
      print(f"passes {passes}, grid change {grid_change}: interpolation "
            f"{row['grid_change_bytes_per_voxel']:.1f} B per voxel, whole run "
            f"{row['bytes_per_voxel']:.1f} B, checked against "
            f"{row['checked_bytes_per_voxel']} B", flush=True)
  finally:
    for path in paths.values():
      os.remove(path)
  machine.write_json(args.out, {"machine": machine.machine(), "hr_shape": HR_SHAPE,
                                "rows": rows})


if __name__ == "__main__":
  main()
