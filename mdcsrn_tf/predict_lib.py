"""Super-resolution of NIfTI files: the library behind `mdcsrn-sr` (predict.py).

A scan already on the HR grid is super-resolved as it is. With `scale`/`target_voxel`, a
coarser scan is first interpolated onto the finer grid exactly as the model's training
inputs were made (its card's lr_mode: "linear", or "zero_filled" = Fourier interpolation;
kspace.upsample, LR voxel i lands on HR voxel i * n_hr / n_lr), and the output
gets the finer voxel size and an affine over the same field of view. Intensities are divided
by the scan's maximum going in and multiplied back coming out, so the output keeps the
input's range. Outputs are written atomically and never over an input.
"""
import os
import sys

import numpy as np

from mdcsrn_tf.data import intensity, nifti
from mdcsrn_tf.errors import InputError


def hr_grid(shape, zooms, scale=None, target_voxel=None):
  """(HR shape, per-axis factors n_hr / n_lr) for `--scale` or `--target_voxel`."""
  if scale is not None and target_voxel is not None:
    raise InputError("give --scale or --target_voxel, not both")
  if target_voxel is not None:
    if not target_voxel > 0:
      raise InputError(f"--target_voxel must be positive, got {target_voxel}")
    scale = [max(z / target_voxel, 1.0) for z in zooms]
  if scale is None:
    return tuple(shape), (1.0, 1.0, 1.0)
  if len(scale) != 3 or not all(s >= 1 for s in scale):
    raise InputError(f"scale needs three factors >= 1 (one per axis), got {list(scale)}")
  hr_shape = tuple(int(round(n * s)) for n, s in zip(shape, scale))
  return hr_shape, tuple(m / n for m, n in zip(hr_shape, shape))


def hr_affine(affine, factors):
  """Affine of the HR grid: HR voxel j sits at LR coordinate j / factor (the alignment of
  kspace.upsample), so voxel 0 keeps its position and n_hr HR voxels span the n_lr LR ones."""
  return np.asarray(affine, float) @ np.diag([1 / f for f in factors] + [1.0])


def load_input(path, scale=None, target_voxel=None, interpolation="linear"):
  """(volume on the HR grid, reference image, HR affine, HR zooms) of one input scan."""
  volume, image = nifti.load_volume(path)
  zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
  hr_shape, factors = hr_grid(volume.shape, zooms, scale, target_voxel)
  if hr_shape == volume.shape:
    return volume, image, image.affine, zooms
  from mdcsrn_tf.data import kspace  # TensorFlow only when a grid change needs it

  axes = tuple(a for a in range(3) if hr_shape[a] != volume.shape[a])
  volume = np.asarray(kspace.upsample(volume, hr_shape, axes=axes, interpolation=interpolation),
                      np.float32)
  return (volume, image, hr_affine(image.affine, factors),
          tuple(z / f for z, f in zip(zooms, factors)))


def super_resolve_file(input_path, output_path, model, tile=64, margin=3, batch=1, scale=None,
                       target_voxel=None, progress=True, jit_compile=False,
                       interpolation="linear"):
  """Super-resolves one NIfTI file into `output_path` (atomic, never over the input);
  `interpolation` puts a coarser scan on the HR grid (the model's lr_mode)."""
  from mdcsrn_tf import inference

  nifti.check_output_path(output_path, inputs=[input_path])
  volume, image, affine, zooms = load_input(input_path, scale, target_voxel, interpolation)
  normalised, peak = intensity.normalise(volume, name=os.fspath(input_path))
  sr = inference.super_resolve(model, normalised, tile=tile, margin=margin, batch=batch,
                               progress=progress, jit_compile=jit_compile)
  nifti.save_volume(intensity.denormalise(sr, peak), output_path, image, affine=affine,
                    zooms=zooms, inputs=[input_path])
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
      found = sorted(os.path.join(path, n) for n in os.listdir(path) if nifti.is_nifti_path(n))
      if not found:
        raise InputError(f"{path}: folder holds no .nii or .nii.gz file")
      inputs += found
    else:
      inputs.append(path)
  if not inputs:
    raise InputError("no input given")
  return [(path, output_name(path, out_dir)) for path in inputs]


def load_model(weights_path=None, model_name=None, gan=False):
  """(generator, its network input's lr_mode, "linear" without a card); a warning on
  stderr when the model card says the weights do not meet the project's quality bar."""
  from mdcsrn_tf import weights

  path = weights_path or weights.default_weights("gan" if gan else "l1")
  model = weights.load_generator(path, model_name)
  has_card = os.path.exists(weights.base_path(path) + weights.CARD_SUFFIX)
  card = weights.read_card(path) if has_card else {}
  if card.get("warning"):
    print(f"warning: {card['warning']}", file=sys.stderr)
  return model, weights.network_input(card)
