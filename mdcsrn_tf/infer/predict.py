"""Super-resolution of NIfTI files: the library behind `mdcsrn-sr` (infer/__main__.py).

A scan already on the HR grid is super-resolved as it is. With `scale`/`target_voxel`, a
coarser scan is first placed onto the finer grid exactly as the model's training inputs
were (its card's acquisition: the placement, e.g. "linear", or "zero_filled" = Fourier
interpolation; kspace.upsample, LR voxel i lands on HR voxel i * n_hr / n_lr), and the
output gets the finer voxel size and a header over the same field of view. Before that, a
grid change the weights were not trained for (per-axis factors other than their card's)
and a grid that would not fit in the memory available are refused. Intensities are mapped
onto [0, 1] going in and back coming out (data/intensity.py: by the maximum, or by the range
for a volume with negative voxels), so the output keeps the input's range.
Outputs are written atomically, never over an input, and never from a non-finite network
output; beside each goes its JSON sidecar (OUTPUT.json, infer/provenance.output_sidecar).
"""
import dataclasses
import os
import sys

import numpy as np

from mdcsrn_tf import cli, paper
from mdcsrn_tf.acquisition import PAPER, Acquisition
from mdcsrn_tf.data import intensity, naming, nifti, transforms
from mdcsrn_tf.errors import InputError, NonFiniteOutput, one_line
from mdcsrn_tf.infer import consistency, engines, outputs, provenance, report, trust
from mdcsrn_tf.infer.grids import (check_grid_flags, check_memory, check_trained_grid,
                                   grid_map, hr_grid, requested_scale)
from mdcsrn_tf.infer.weights_choice import load_model, trained_settings, weights_to_use

@dataclasses.dataclass(frozen=True)
class PredictOptions:
  """How `mdcsrn-sr` super-resolves its inputs.

  Attributes:
    weights: PATH(.weights.h5) of a generator with its PATH.json card, or the name of
      weights shipped with the package: the defaults trained on whole heads, heads_b4u4_l1
      (and heads_b4u4_gan), or one per row of the paper's tables under one budget,
      MODEL_l1 (b1u8, b2u4, b3u4, b4u4, fsrcnn, srresnet) or b4u4_gan; a name that is not
      shipped is refused with the list of those that are (default: heads_b4u4_l1 where
      shipped, else b4u4_l1).
    gan: use the default GAN weights instead of the L1 ones (heads_b4u4_gan where shipped,
      else b4u4_gan; not with --weights).
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
    scale: per-axis factors from the input grid to the HR grid, e.g. 2,2,1; they must be
      the factors the weights were trained for (their card's acquisition).
    target_voxel: HR voxel size in mm (the header's spatial unit, mm, micron or metre, is
      honoured): axes with larger voxels are interpolated to it (the factors this makes
      must be the ones the weights were trained for).
    out_dir: output folder for several inputs, folders or glob patterns, made when missing:
      each input to OUT_DIR/<name>_sr.nii.gz, its name the first part of the input paths
      that differs (HCP: the subject folder), or as --out_layout says.
    out_layout: names (OUT_DIR/<name>_sr.nii.gz) or mirror (each input's path below the
      folders all inputs share, recreated under OUT_DIR, with _sr before the suffix).
    recursive: folder inputs: also the NIfTI files in their subfolders.
    overwrite: replace outputs that exist already (refused without): an earlier run's (its
      sidecars too), any file named as OUTPUT, or the --report page; a symbolic link there
      is replaced itself, never the file it points to.
    unverified_weights: load weights whose model card records no SHA-256 (cards from
      before checksums); otherwise they are refused.
    report: PATH.html: a QC report of the run (slices of every input and output, the
      grids, the weights and their held-out figures), self-contained.
    tta: test-time augmentation: the network on N (1-16) of the transforms that keep the
      acquisition (flips, the swap of two axes with equal factors), the output their mean,
      their per-voxel standard deviation written beside it (mdcsrn-sr: OUTPUT with
      _uncertainty before the suffix; mdcsrn-bids: desc-uncertainty); N times the time.
    strict: refuse an input outside the training domain of the weights' card (voxel size,
      head size, intensities, spectrum) in one error line instead of a warning.
    engine: what runs the network: auto (the fastest measured for this kind of CPU,
      docs/performance.md#engines), tensorflow (the reference), openvino or onnxruntime
      (the network as ONNX, compiled once per window shape and cached).
    precision: float32, or bfloat16 through OpenVINO on CPUs with bfloat16 instructions
      (faster, less exact: docs/performance.md#engines).
  """
  weights: str | None = None
  gan: bool = False
  model: str | None = None
  tile: str = "auto"
  margin: int = paper.MARGIN
  batch: int = 1
  memory_limit: int | None = None
  jit_compile: bool = False
  scale: tuple[float, ...] | None = None
  target_voxel: float | None = None
  out_dir: str | None = None
  out_layout: str = "names"
  recursive: bool = False
  overwrite: bool = False
  unverified_weights: bool = False
  report: str | None = None
  tta: int = 1
  strict: bool = False
  engine: str = "auto"
  precision: str = "float32"

  def __post_init__(self):
    cli.require_at_least(self, margin=0, batch=1, memory_limit=1, tta=1)
    if self.tta > transforms.MOST:
      raise InputError(f"--tta is at most {transforms.MOST} (the transforms), got {self.tta}")
    cli.int_or_word(self, "tile", "auto")
    engines.check_engine(self.engine, self.precision, self.jit_compile)
    check_grid_flags(self.scale, self.target_voxel)
    if self.out_layout not in outputs.OUT_LAYOUTS:
      raise InputError(f"--out_layout must be one of {', '.join(outputs.OUT_LAYOUTS)}, got "
                       f"{self.out_layout!r}")
    if self.gan and self.weights:  # one would be ignored
      raise InputError("give --weights or --gan (the shipped GAN weights), not both")
    for name, default in (("out_layout", "names"), ("recursive", False)):
      if getattr(self, name) != default and self.out_dir is None:
        raise InputError(f"--{name} needs --out_dir (it says how inputs map to outputs there)")


def super_resolve_files(options: PredictOptions, paths) -> list:
  """Super-resolves the inputs the command line names (INPUT OUTPUT, or inputs with
  --out_dir); returns the outputs written. Every input and output is checked, and every
  grid change sized, before the model loads."""
  pairs = outputs.plan_outputs(paths, options.out_dir, options.recursive, options.out_layout)
  inputs = [input_path for input_path, _ in pairs]
  weights_path = weights_to_use(options.weights, options.gan)
  acquisition, keep_band = trained_settings(weights_path, options.model)
  trained, found = trust.screen(inputs, lambda path: check_input(
      path, options.scale, options.target_voxel, acquisition, weights_path, options.tta,
      keep_band),
                                weights_path, options.model, acquisition)
  everything, maps = outputs.with_uncertainty(pairs, options.tta)
  sidecars = outputs.plan_sidecars(everything, [options.report] if options.report else [])
  outputs.refuse_existing(everything + [(source, sidecars[output]) for source, output in
                                        everything], options.overwrite, options.out_dir)
  if options.out_dir is not None:
    note = naming.naming_note(inputs, naming.subject_names(inputs))
    if note and options.out_layout == "names":
      print(one_line(f"{note}; outputs in {options.out_dir}"), file=sys.stderr)
  with outputs.output_folders(pairs if options.out_dir is not None else ()):
    for _, output_path in everything:
      nifti.check_output_path(output_path, inputs=inputs)
    if options.report:
      report.check_report_path(options.report, [path for pair in everything for path in pair],
                               options.overwrite)
    trust.announce(found, options.strict, weights_path)
    model, card = load_model(weights_path, options.model,
                             allow_unverified=options.unverified_weights)
    engine = engines.prepare(options.engine, model, card.weights_sha256, options.precision,
                             options.jit_compile)
    written, record = [], provenance.weights_record(weights_path)
    for input_path, output_path in pairs:
      written.append(super_resolve_file(
          input_path, output_path, model, cli.int_or_word(options, "tile", "auto"),
          options.margin, options.batch, options.scale, options.target_voxel,
          progress=sys.stderr.isatty(),  # a bar for a person, not a log
          jit_compile=options.jit_compile, acquisition=card.acquisition,
          weights_name=weights_path, memory_limit=options.memory_limit, passes=options.tta,
          uncertainty_path=maps.get(output_path), engine=engine,
          keep_band=consistency.band_kept_by(card)))
      write_sidecars(options, sidecars, input_path, output_path, record,
                     trust.recorded(found, trained)[input_path], maps.get(output_path))
  if options.report:
    report.write_report(options.report, pairs, weights_path, "mdcsrn-sr report",
                        findings=trust.recorded(found, trained), uncertainty=maps)
  return written


def write_sidecars(options: PredictOptions, sidecars, input_path, output_path, weights_record,
                   domain, uncertainty=None):
  """The JSON sidecars (`sidecars`: outputs.plan_sidecars) of one input's outputs, each
  after its image: the uncertainty map's, then the output's (provenance.output_sidecar:
  the input, the weights (provenance.weights_record), the settings, the command and
  `domain`, what the input's check against the training domain found)."""
  if uncertainty:
    provenance.write_json(sidecars[uncertainty], provenance.uncertainty_sidecar(
        input_path, output_path, options.tta))
  provenance.write_json(sidecars[output_path], provenance.output_sidecar(
      input_path, output_path, weights_record, provenance.command_line(), domain,
      provenance.output_settings(options), options.tta, uncertainty))


def check_input(path, scale=None, target_voxel=None, acquisition: Acquisition | None = None,
                weights_name="the weights", passes=1, keep_band=False):
  """(voxels, image, HR shape, factors) of one input scan; InputError for an unusable file
  (a volume without contrast or a positive voxel included: intensity.check_contrast), a grid
  change `acquisition` (the weights', when given) was not trained for, or an HR grid
  that does not fit in memory (with test-time augmentation's `passes`, and the measured-band
  projection when `keep_band`). Nothing is interpolated yet."""
  volume, image = nifti.load_volume(path)
  intensity.check_contrast(volume, name=os.fspath(path))
  zooms = nifti.voxel_size_mm(image, path) if target_voxel is not None else None
  hr_shape, factors = hr_grid(volume.shape, zooms, scale, target_voxel, name=path)
  check_memory(path, hr_shape, hr_shape != volume.shape, passes, keep_band)
  if acquisition is not None:
    check_trained_grid(path, requested_scale(zooms, scale, target_voxel), acquisition,
                       weights_name)
  return volume, image, hr_shape, factors


def load_input(path, scale=None, target_voxel=None, acquisition: Acquisition = PAPER):
  """(volume on the HR grid, reference image, map from its voxels to the reference's or
  None when the grid is the input's) of one input scan, placed on the HR grid as
  `acquisition` says."""
  volume, image, hr_shape, factors = check_input(path, scale, target_voxel, acquisition)
  if hr_shape == volume.shape:
    return volume, image, None
  from mdcsrn_tf.data import kspace  # TensorFlow only when a grid change needs it

  axes = tuple(a for a in range(3) if hr_shape[a] != volume.shape[a])
  volume = np.asarray(kspace.upsample(volume, hr_shape, axes=axes,
                                      placement=acquisition.placement), np.float32)
  return volume, image, grid_map(factors)


def super_resolve_file(input_path, output_path, model, tile=paper.TILE, margin=paper.MARGIN,
                       batch=1, scale=None, target_voxel=None, progress=True, jit_compile=False,
                       acquisition: Acquisition = PAPER, weights_name="the weights",
                       memory_limit=None, passes=1, uncertainty_path=None, engine=None,
                       keep_band=None):
  """Super-resolves one NIfTI file into `output_path` (atomic, never over the input); a
  coarser scan goes on the HR grid as the model's `acquisition` says, and only by the
  factors it names. `tile` None
  plans the tiles and batch from `memory_limit` MiB (inference.auto_plan); with a tile
  edge, `memory_limit` (if given) sets the batch. A network output with NaN or Inf voxels
  is an InputError naming the input and `weights_name`, and nothing is written. `passes` >
  1 is test-time augmentation (infer/tta.py): the output is the passes' mean, and their
  standard deviation goes to `uncertainty_path`, written first. `engine` runs the network
  (engines.prepare; None: the TensorFlow pass); `keep_band` keeps that acquisition's
  measured band in the output (consistency.band_kept_by of the weights' card)."""
  from mdcsrn_tf.infer import tta

  nifti.check_output_path(output_path, inputs=[input_path])
  volume, image, to_input = load_input(input_path, scale, target_voxel, acquisition)
  normalised, mapping = intensity.normalise(volume, name=os.fspath(input_path))
  try:
    sr, spread = tta.super_resolve(model, normalised, tile, margin, batch, memory_limit, passes,
                                   acquisition.swap_axes, progress, jit_compile, engine,
                                   keep_band)
  except NonFiniteOutput as error:
    raise InputError(f"{input_path}: {error} with weights {weights_name} (corrupted or "
                     f"diverged weights); nothing written") from None
  if spread is not None and uncertainty_path:  # in the input's units, as the output
    nifti.save_volume(spread * np.float32(mapping.scale), uncertainty_path, image,
                      to_reference=to_input, inputs=[input_path])
  nifti.save_volume(intensity.denormalise(sr, mapping), output_path, image, to_reference=to_input,
                    inputs=[input_path])
  return output_path
