"""Super-resolution of NIfTI files: the library behind `mdcsrn-sr` (infer/__main__.py).

A scan already on the HR grid is super-resolved as it is. With `scale`/`target_voxel`, a
coarser scan is first interpolated onto the finer grid exactly as the model's training
inputs were made (its card's lr_mode: "linear", or "zero_filled" = Fourier interpolation;
kspace.upsample, LR voxel i lands on HR voxel i * n_hr / n_lr), and the output
gets the finer voxel size and a header over the same field of view. Before that, a grid that
would not fit in the memory available is refused. Intensities are mapped onto [0, 1] going
in and back coming out (data/intensity.py: by the maximum, or by the range for a volume with
negative voxels), so the output keeps the input's range.
Outputs are written atomically, never over an input, and never from a non-finite network
output.
"""
import dataclasses
import math
import os
import sys

import numpy as np

from mdcsrn_tf import cli, hardware
from mdcsrn_tf.data import intensity, nifti
from mdcsrn_tf.errors import InputError

@dataclasses.dataclass(frozen=True)
class PredictOptions:
  """How `mdcsrn-sr` super-resolves its inputs.

  Attributes:
    weights: PATH(.weights.h5) of a generator with its PATH.json card (default: the shipped
      b4u4 weights).
    gan: use the shipped GAN weights instead of the L1 ones.
    model: the generator's name, for weights without a model card.
    tile: output tile edge in voxels, 64 for the paper's tiling, or auto: per-axis tiles
      that compute the fewest voxels within --memory_limit (faster; with a margin below
      the receptive field the voxels near the seams differ from --tile 64's,
      docs/performance.md#choosing-the-tiles).
    margin: voxels of context on each side of a tile, discarded (the paper's 3).
    batch: tiles per forward pass with a fixed --tile (memory grows with it).
    memory_limit: MiB for the network's activations: sizes the tiles and their batch with
      --tile auto (default 4096, the same on every machine, so that the output is too);
      with a fixed --tile, the largest tile batch that fits replaces --batch.
    jit_compile: run the network through XLA (helps on GPUs, not on CPUs).
    scale: per-axis factors from the input grid to the HR grid, e.g. 2,2,1.
    target_voxel: HR voxel size in mm: axes with larger voxels are interpolated to it (the
      header's spatial unit, mm, micron or metre, is honoured).
    out_dir: output folder for several inputs or a folder input (each to
      OUT_DIR/<name>_sr.nii.gz).
    unverified_weights: load weights whose model card records no SHA-256 (cards from
      before checksums); otherwise they are refused.
  """
  weights: str | None = None
  gan: bool = False
  model: str | None = None
  tile: str = "auto"
  margin: int = 3
  batch: int = 1
  memory_limit: int | None = None
  jit_compile: bool = False
  scale: tuple[float, ...] | None = None
  target_voxel: float | None = None
  out_dir: str | None = None
  unverified_weights: bool = False

  def __post_init__(self):
    cli.require_at_least(self, margin=0, batch=1, memory_limit=1)
    cli.int_or_word(self, "tile", "auto")
    check_grid_flags(self.scale, self.target_voxel)


def super_resolve_files(options: PredictOptions, paths) -> list:
  """Super-resolves the inputs the command line names (INPUT OUTPUT, or inputs with
  --out_dir); returns the outputs written. Every input and output is checked, and every
  grid change sized, before the model loads."""
  pairs = plan_outputs(paths, options.out_dir)
  inputs = [input_path for input_path, _ in pairs]
  for input_path, output_path in pairs:
    nifti.check_output_path(output_path, inputs=inputs)
    check_input(input_path, options.scale, options.target_voxel)
  weights_path = weights_to_use(options.weights, options.gan)
  model, lr_mode = load_model(weights_path, options.model,
                              allow_unverified=options.unverified_weights)
  written = []
  for input_path, output_path in pairs:
    written.append(super_resolve_file(
        input_path, output_path, model, cli.int_or_word(options, "tile", "auto"),
        options.margin, options.batch, options.scale, options.target_voxel,
        progress=sys.stderr.isatty(),  # a bar for a person, not a log
        jit_compile=options.jit_compile, interpolation=lr_mode, weights_name=weights_path,
        memory_limit=options.memory_limit))
  return written


# Peak bytes a run holds per voxel of the HR grid after a grid change: the float32
# volumes (input on the HR grid, normalised, network output, de-normalised: 16 B) and, before
# them, the interpolation's intermediates: Fourier interpolation's complex128 spectra peak at
# 59 B per voxel, linear interpolation at 34 B (measured with ru_maxrss on 20 M voxels).
HR_BYTES_PER_VOXEL = 64


def check_grid_flags(scale=None, target_voxel=None):
  """InputError unless at most one of `scale` (three finite factors >= 1) and
  `target_voxel` (a finite size > 0) is given."""
  if scale is not None and target_voxel is not None:
    raise InputError("give --scale or --target_voxel, not both")
  if target_voxel is not None and not (math.isfinite(target_voxel) and target_voxel > 0):
    raise InputError(f"--target_voxel must be a positive number of mm, got {target_voxel}")
  if scale is not None and (len(scale) != 3 or not all(math.isfinite(s) and s >= 1
                                                       for s in scale)):
    raise InputError(f"--scale needs three finite factors >= 1 (one per axis), got "
                     f"{','.join(str(s) for s in scale)}")


def hr_grid(shape, zooms, scale=None, target_voxel=None, name="the input"):
  """(HR shape, per-axis factors n_hr / n_lr) for `--scale` or `--target_voxel`."""
  check_grid_flags(scale, target_voxel)
  if target_voxel is not None:
    scale = [max(z / target_voxel, 1.0) for z in zooms]
  if scale is None:
    return tuple(shape), (1.0, 1.0, 1.0)
  sizes = [n * s for n, s in zip(shape, scale)]
  if not all(math.isfinite(size) for size in sizes):  # finite factors can still overflow
    raise InputError(f"{name}: the HR grid these --scale/--target_voxel values ask for is too "
                     "large to represent")
  hr_shape = tuple(int(round(size)) for size in sizes)
  return hr_shape, tuple(m / n for m, n in zip(hr_shape, shape))


def check_memory(path, hr_shape, meminfo="/proc/meminfo"):
  """InputError when a run on the HR grid would need more memory than is available."""
  available = hardware.available_memory(meminfo)
  needed = math.prod(hr_shape) * HR_BYTES_PER_VOXEL
  if available is not None and needed > available:
    raise InputError(f"{path}: the HR grid of {' x '.join(map(str, hr_shape))} voxels needs "
                     f"about {needed / 2**30:.3g} GiB, more than the {available / 2**30:.3g} GiB "
                     "of memory available; ask for a smaller --scale or a larger --target_voxel")


def grid_map(factors):
  """The 4x4 map from HR voxel indices to input voxel indices: HR voxel j sits at input
  coordinate j / factor (the alignment of kspace.upsample), so voxel 0 keeps its position
  and n_hr HR voxels span the n_lr input ones."""
  return np.diag([1 / f for f in factors] + [1.0])


def check_input(path, scale=None, target_voxel=None):
  """(voxels, image, HR shape, factors) of one input scan; InputError for an unusable file
  or an HR grid that does not fit in memory. Nothing is interpolated yet."""
  volume, image = nifti.load_volume(path)
  zooms = nifti.voxel_size_mm(image, path) if target_voxel is not None else None
  hr_shape, factors = hr_grid(volume.shape, zooms, scale, target_voxel, name=path)
  if hr_shape != volume.shape:
    check_memory(path, hr_shape)
  return volume, image, hr_shape, factors


def load_input(path, scale=None, target_voxel=None, interpolation="linear"):
  """(volume on the HR grid, reference image, map from its voxels to the reference's or
  None when the grid is the input's) of one input scan."""
  volume, image, hr_shape, factors = check_input(path, scale, target_voxel)
  if hr_shape == volume.shape:
    return volume, image, None
  from mdcsrn_tf.data import kspace  # TensorFlow only when a grid change needs it

  axes = tuple(a for a in range(3) if hr_shape[a] != volume.shape[a])
  volume = np.asarray(kspace.upsample(volume, hr_shape, axes=axes, interpolation=interpolation),
                      np.float32)
  return volume, image, grid_map(factors)


def super_resolve_file(input_path, output_path, model, tile=64, margin=3, batch=1, scale=None,
                       target_voxel=None, progress=True, jit_compile=False,
                       interpolation="linear", weights_name="the weights", memory_limit=None):
  """Super-resolves one NIfTI file into `output_path` (atomic, never over the input);
  `interpolation` puts a coarser scan on the HR grid (the model's lr_mode). `tile` None
  plans the tiles and batch from `memory_limit` MiB (inference.auto_plan); with a tile
  edge, `memory_limit` (if given) sets the batch. A network output with NaN or Inf voxels
  is an InputError naming the input and `weights_name`, and nothing is written."""
  from mdcsrn_tf.infer import inference

  nifti.check_output_path(output_path, inputs=[input_path])
  volume, image, to_input = load_input(input_path, scale, target_voxel, interpolation)
  normalised, mapping = intensity.normalise(volume, name=os.fspath(input_path))
  if tile is None:
    tile, batch = inference.auto_plan(
        model, volume.shape, margin, (memory_limit or inference.DEFAULT_MEMORY_MIB) * 2**20)
  elif memory_limit:
    batch = inference.batch_for_memory(model, memory_limit * 2**20, tile, margin)
  sr = inference.super_resolve(model, normalised, tile=tile, margin=margin, batch=batch,
                               progress=progress, jit_compile=jit_compile)
  n_bad = int(np.count_nonzero(~np.isfinite(sr)))
  if n_bad:
    raise InputError(f"{input_path}: {n_bad} of {sr.size} output voxels are NaN or Inf with "
                     f"weights {weights_name} (corrupted or diverged weights); nothing written")
  nifti.save_volume(intensity.denormalise(sr, mapping), output_path, image, to_reference=to_input,
                    inputs=[input_path])
  return output_path


def output_name(input_path, out_dir):
  name = os.path.basename(os.fspath(input_path))
  suffix = ".nii.gz" if name.endswith(".nii.gz") else ".nii"
  return os.path.join(out_dir, name[:-len(suffix)] + "_sr" + suffix)


def plan_outputs(paths, out_dir=None):
  """[(input, output)] from the command line's paths: INPUT OUTPUT, or inputs (files or
  folders of NIfTI files) with --out_dir."""
  if out_dir is None:
    if len(paths) != 2:
      raise InputError("give INPUT OUTPUT, or inputs (files or a folder) with --out_dir DIR")
    return [tuple(paths)]
  if not os.path.isdir(out_dir):
    raise InputError(f"--out_dir {out_dir}: no such folder")
  inputs = []
  for path in paths:
    if os.path.isdir(path):
      # hidden names are skipped: among them the temporary files of an interrupted write
      found = sorted(os.path.join(path, n) for n in os.listdir(path)
                     if nifti.is_nifti_path(n) and not n.startswith("."))
      if not found:
        raise InputError(f"{path}: folder holds no .nii or .nii.gz file (hidden ones skipped)")
      inputs += found
    else:
      inputs.append(path)
  if not inputs:
    raise InputError("no input given")
  pairs = [(path, output_name(path, out_dir)) for path in inputs]
  written_by = {}
  for source, target in pairs:
    key = os.path.abspath(target)
    if key in written_by:
      raise InputError(f"{written_by[key]} and {source} would both be written to {target}; "
                       "super-resolve them in separate runs or rename one")
    written_by[key] = source
  return pairs


def weights_to_use(weights_path=None, gan=False):
  """The weights the user named, or the shipped L1 (or GAN) ones."""
  from mdcsrn_tf import weights

  return weights_path or weights.default_weights("gan" if gan else "l1")


def load_model(weights_path=None, model_name=None, gan=False, allow_unverified=False):
  """(generator, the network input its card names: "linear" without a card); a warning on
  stderr when the model card says the weights do not meet the project's quality bar."""
  from mdcsrn_tf import weights

  path = weights_to_use(weights_path, gan)
  model = weights.load_generator(path, model_name, allow_unverified)
  if not os.path.exists(weights.base_path(path) + weights.CARD_SUFFIX):
    return model, "linear"
  card = weights.read_card(path)
  if card.warning:
    print(f"warning: {card.warning}", file=sys.stderr)
  return model, card.lr_mode
