"""The training domain of a network: what the inputs it was trained on looked like, and
whether an input looks like them (docs/evaluation.md#when-not-to-trust-an-output).

A volume's profile is a handful of figures of it as the network sees it (on the HR grid,
mapped onto [0, 1] by data/intensity.py):
- `voxel_mm`: its voxel size on the HR grid, per axis;
- `head_ml` and `extent_mm`: the volume of its head (the voxels above HEAD_LEVEL, the
  level training patches are chosen by) in mL, and the head's extent per axis in mm (from
  the 0.5th to the 99.5th percentile of its voxels along the axis);
- `quantiles`: the head's normalised intensities at QUANTILES;
- `interior_skew`: how the intensities of the head's interior (its voxels deeper below the
  head's surface than INTERIOR_DEPTH of the deepest one's depth: the brain, away from scalp
  and skull) skew, Kelly's (q90 + q10 - 2 q50) / (q90 - q10): the contrast's ordering of
  tissues, which no quantile of the whole head tells. In a T1 white matter is the bright
  bulk and CSF a dark tail (negative); in a T2 white matter is the dark bulk and CSF a
  bright tail (positive);
- `interior_spread`: how far the interior's intensities spread, (q90 - q10) / q50: an MR
  head's brain holds tissues of different brightness (0.29-1.23 among the bundled volumes,
  T1 and T2), a CT's lie within a few Hounsfield units of each other, far above air's
  -1000 (0.025 for a head CT, 0.17 for a brain-only CT template). Compared with
  SPREAD_LIMIT, not with a trained range, as `flat_share` is;
- `flat_share`: the share of the head's voxels whose value equals one of their six
  neighbours' exactly: a label map or segmentation is piecewise constant (0.999-1.000 for
  the atlases of the bundled mricron-data and Slicer's MRHead labels), an MR image is not
  (at most 0.63 among the bundled volumes, Colin27's 0.5 mm upsampling of an 8-bit image;
  0.00-0.07 for the float and 16-bit ones). Compared with FLAT_LIMIT, not with a trained
  range: the training inputs are degraded in k-space, where no two voxels are equal;
- `removed_band`: the share of its spectral energy (the mean left out) in the band the
  acquisition removes, and `upper_band`: the share of the kept band's energy in the kept
  band's outer half (per axis, above half its edge): how much fine detail the input holds
  where the acquisition keeps it.

Training records the profiles of the network inputs it trained on in the model card
(`training_domain`: `of_split`); every command that runs the network compares its input's
profile with them (`findings`), each figure against the range the training inputs span,
widened by a margin measured on the bundled volumes (benchmarks/training_domain.py): a
voxel size or a kept-band share outside it by more than its factor, a head smaller than the
smallest trained one by more than its factor, an intensity quantile beyond it by more than
its amount, an interior skewed brighter than the most skewed trained one by more than its
amount (only that way: a darker tail is more CSF, an atrophied brain, still the same
contrast), a head flatter than FLAT_LIMIT and an interior more uniform than SPREAD_LIMIT.
Cards without a domain are not checked, and figures a card's domain lacks
(a card from before them) are not compared. NumPy and SciPy only: TensorFlow loads
only to degrade training volumes (`of_split`).
"""
import os

import numpy as np

from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf.data import manifest, nifti, volume_store
from mdcsrn_tf.metrics import HEAD_LEVEL

VERSION = 2  # 2: interior_skew
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
INTERIOR_DEPTH = 0.4  # the interior: deeper than this share of the deepest voxel's depth
DEPTH_GRID_MM = 2.0  # depth measured on a grid of about this spacing (fast; the interior
#                      begins some 20-35 mm deep in a head)
SKEW_QUANTILES = (0.1, 0.5, 0.9)
MIN_INTERIOR = 1000  # voxels: fewer give no interior_skew
EXTENT_PERCENTILES = (0.005, 0.995)
MAX_VOLUMES = 64  # training volumes a card's domain profiles, spread over the split
# Margins beyond the trained range (measured: docs/evaluation.md#when-not-to-trust-an-output)
VOXEL_MARGIN = 1.1  # a voxel edge up to 1.1 times the trained range's, either way
HEAD_MARGIN = 2.0  # a head at least half the smallest trained one
INTENSITY_MARGIN = 0.05  # a quantile within 0.05 of the trained range (on [0, 1])
BAND_MARGIN = 2.0  # a kept-band share within 2 times the trained range, either way
SKEW_MARGIN = 0.3  # an interior_skew at most 0.3 above the trained range's top
REMOVED_FLOOR = 1e-3  # removed-band shares below this are "none": not compared
FLAT_LIMIT = 0.9  # a flat_share above it: a label map (module docstring: measured figures)
SPREAD_LIMIT = 0.2  # an interior_spread below it: a CT (module docstring: measured figures)
TRAINED = "the network's training inputs"


def spectral_shares(normalised, acquisition: Acquisition, scale=(1, 1, 1)) -> tuple:
  """(removed_band, upper_band) of a volume `scale` times coarser than the HR grid per axis
  (removed_band None unless it is on the HR grid: a coarser one holds no removed band)."""
  from scipy import fft  # pylint: disable=import-outside-toplevel

  power = np.abs(fft.rfftn(np.asarray(normalised, np.float32), workers=-1)) ** 2
  power[0, 0, 0] = 0  # the mean
  shape = np.shape(normalised)
  # each axis' frequencies as a share of the kept band's edge (1: the edge)
  relative = []
  for axis, (n, factor, s) in enumerate(zip(shape, acquisition.factors, scale)):
    frequency = np.fft.rfftfreq(n) if axis == 2 else np.fft.fftfreq(n)
    kept_edge = s / factor
    share = 2 * np.abs(frequency) / kept_edge
    if kept_edge >= 1:  # an axis this grid holds no finer than the kept band: all of it kept
      share = np.minimum(share, np.nextafter(1.0, 0.0))
    relative.append(share.reshape([-1 if a == axis else 1 for a in range(3)]))
  reach = np.maximum(np.maximum(relative[0], relative[1]), relative[2])
  total = float(power.sum()) or 1.0
  kept = power[reach < 1]
  kept_total = float(kept.sum()) or 1.0
  upper = float(power[(reach >= 0.5) & (reach < 1)].sum()) / kept_total
  removed = (total - float(kept.sum())) / total if all(s == 1 for s in scale) else None
  return removed, upper


def interior(head, voxel_mm) -> np.ndarray:
  """The voxels of the head mask `head` deeper below its surface (the mask's holes filled,
  the field of view's edge counting as surface) than INTERIOR_DEPTH of the deepest one's
  depth, measured on a grid of about DEPTH_GRID_MM."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel

  steps = [max(1, int(round(DEPTH_GRID_MM / z))) for z in voxel_mm]
  coarse = np.pad(head[::steps[0], ::steps[1], ::steps[2]], 1)
  depth = ndimage.distance_transform_edt(ndimage.binary_fill_holes(coarse), sampling=[
      z * s for z, s in zip(voxel_mm, steps)])[1:-1, 1:-1, 1:-1]
  inner = depth > INTERIOR_DEPTH * depth.max()
  for axis, step in enumerate(steps):
    inner = np.repeat(inner, step, axis=axis)
  return inner[:head.shape[0], :head.shape[1], :head.shape[2]]


def interior_figures(normalised, head, voxel_mm) -> tuple:
  """(interior_skew, interior_spread) of the head's interior intensities (module
  docstring); None for an interior of fewer than MIN_INTERIOR voxels, or (the skew) without
  contrast."""
  values = np.asarray(normalised)[interior(head, voxel_mm) & head]
  if values.size < MIN_INTERIOR:
    return None, None
  low, middle, high = np.quantile(values, SKEW_QUANTILES)
  skew = float((high + low - 2 * middle) / (high - low)) if high > low else None
  return skew, float((high - low) / middle)


def flat_share(normalised, head) -> float:
  """The share of the `head` voxels whose value equals one of their six neighbours'."""
  volume = np.asarray(normalised)
  equal = np.zeros(volume.shape, bool)
  for axis in range(3):
    lower = tuple(slice(0, -1) if a == axis else slice(None) for a in range(3))
    upper = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
    same = volume[lower] == volume[upper]
    equal[lower] |= same
    equal[upper] |= same
  return float(np.count_nonzero(equal & head) / np.count_nonzero(head))


def head_figures(normalised, voxel_mm) -> dict:
  """{head_ml, extent_mm, quantiles, interior_skew, interior_spread, flat_share} of a
  normalised volume (module docstring)."""
  head = normalised > HEAD_LEVEL
  voxels = int(np.count_nonzero(head))
  if not voxels:
    return {"head_ml": 0.0, "extent_mm": [0.0, 0.0, 0.0], "quantiles": None,
            "interior_skew": None, "interior_spread": None, "flat_share": None}
  extent = []
  for axis in range(3):
    counts = np.cumsum(head.sum(axis=tuple(a for a in range(3) if a != axis)))
    low, high = np.searchsorted(counts, [p * voxels for p in EXTENT_PERCENTILES])
    extent.append(float((high - low + 1) * voxel_mm[axis]))
  quantiles = np.quantile(np.asarray(normalised)[head], QUANTILES)
  skew, spread = interior_figures(normalised, head, voxel_mm)
  return {"head_ml": voxels * float(np.prod(voxel_mm)) / 1000, "extent_mm": extent,
          "quantiles": [float(q) for q in quantiles],
          "interior_skew": skew, "interior_spread": spread,
          "flat_share": flat_share(normalised, head)}


def profile(normalised, voxel_mm, acquisition: Acquisition, scale=(1, 1, 1)) -> dict:
  """The profile of a volume mapped onto [0, 1] whose voxels are `voxel_mm` (mm), `scale`
  times coarser per axis than the HR grid the network runs on."""
  removed, upper = spectral_shares(normalised, acquisition, scale)
  hr_voxel = [float(z) / s for z, s in zip(voxel_mm, scale)]
  return {"voxel_mm": hr_voxel, **head_figures(normalised, voxel_mm),
          "removed_band": removed, "upper_band": upper}


def _rounded(value):
  if isinstance(value, list):
    return [_rounded(v) for v in value]
  return value if value is None else float(f"{value:.6g}")


def record(profiles: dict) -> dict:
  """The card's `training_domain` of {volume name: profile}."""
  return {"version": VERSION, "volumes": {name: {key: _rounded(value) for key, value in
                                                 figures.items()}
                                          for name, figures in profiles.items()}}


def evenly(entries, limit=MAX_VOLUMES) -> list:
  """At most `limit` of `entries`, spread evenly over them (all when there are fewer)."""
  if len(entries) <= limit:
    return list(entries)
  return [entries[int(i)] for i in np.linspace(0, len(entries) - 1, limit).round()]


def of_split(manifest_path, split, store, names=None, limit=MAX_VOLUMES, log=None) -> dict:
  """The `training_domain` record of a manifest split's network inputs as `store` (a
  volume_store.VolumeStore of the acquisition) makes them: of its volumes named `names`
  (default: all), at most `limit`, spread over the split."""
  entries = manifest.split_entries(manifest_path, split)
  if names is not None:
    entries = [e for e in entries if e["name"] in set(names)]
  return of_entries(entries, store, limit, log)


def of_entries(entries, store, limit=MAX_VOLUMES, log=None) -> dict:
  """The `training_domain` record of these manifest entries' network inputs as `store`
  makes them (see of_split)."""
  profiles = {}
  for entry in evenly(entries, limit):
    _, image = nifti.load_volume(entry["path"])
    network_input = np.asarray(store.pair(entry["path"])[volume_store.LR])
    profiles[entry["name"]] = profile(network_input, nifti.voxel_size_mm(image, entry["path"]),
                                      store.acquisition)
    if log:
      log(f"training domain: {os.path.basename(entry['path'])} profiled")
  return record(profiles)


def of_training(dataset, names, acquisition: Acquisition, cache_dir=None, log=None) -> dict:
  """The `training_domain` of a card from before it: its training volumes `names` (the
  card's subjects["train"]; None: the whole split) in its data set manifest `dataset`,
  degraded as its `acquisition` says (through the degraded-volume cache, default: the
  user's); {} when the manifest or those names cannot be found here."""
  if not (dataset and names != [] and os.path.isfile(manifest.manifest_path(dataset))):
    return {}
  store = volume_store.VolumeStore(acquisition, cache_dir or volume_store.default_cache_dir())
  found = of_split(dataset, "train", store, names, log=log)
  return found if found["volumes"] else {}


def trained_span(domain, key, index=None, signed=False) -> tuple | None:
  """(lowest, highest) finite value of a figure over the domain's volumes, positive or zero
  unless `signed`; None where no volume has one (a card from before the figure)."""
  values = []
  for figures in domain.get("volumes", {}).values():
    value = figures.get(key)
    if isinstance(value, list):
      value = value if index is None else (value[index:index + 1] if len(value) > index else [])
    else:
      value = [value]
    values += [v for v in value if isinstance(v, (int, float)) and np.isfinite(v)
               and (signed or v >= 0)]
  return (min(values), max(values)) if values else None


def _mm(values) -> str:
  return " x ".join(f"{v:.3g}" for v in values)


def findings(figures: dict, domain: dict, removed_band=True) -> list:
  """One phrase per way the profile `figures` lies outside `domain` (a card's
  training_domain; [] for an empty one): the measured figure and the trained range.
  `removed_band` False leaves that share out (an input degraded as training degraded)."""
  if not domain.get("volumes"):
    return []
  found = []
  span = trained_span(domain, "voxel_mm")
  if span and (min(figures["voxel_mm"]) < span[0] / VOXEL_MARGIN
               or max(figures["voxel_mm"]) > span[1] * VOXEL_MARGIN):
    found.append(f"voxel size {_mm(figures['voxel_mm'])} mm on the network's grid, outside "
                 f"the {span[0]:.3g}-{span[1]:.3g} mm of {TRAINED} (margin x{VOXEL_MARGIN:g})")
  span = trained_span(domain, "head_ml")
  if span and figures["head_ml"] < span[0] / HEAD_MARGIN:
    found.append(f"a head of {figures['head_ml']:.4g} mL ({_mm(figures['extent_mm'])} mm), "
                 f"much smaller than the {span[0]:.4g}-{span[1]:.4g} mL of {TRAINED} (margin "
                 f"x{HEAD_MARGIN:g}): a partial field of view, or a crop?")
  outside = []
  for index, q in enumerate(QUANTILES):
    span = trained_span(domain, "quantiles", index)
    value = (figures.get("quantiles") or [None] * len(QUANTILES))[index]
    if span and value is not None and not (span[0] - INTENSITY_MARGIN <= value
                                           <= span[1] + INTENSITY_MARGIN):
      outside.append(f"{q:.0%} quantile {value:.3g}, trained {span[0]:.3g}-{span[1]:.3g}")
  if outside:
    found.append(f"head intensities unlike {TRAINED}' ({'; '.join(outside)}; margin "
                 f"{INTENSITY_MARGIN:g}): another contrast, a skull-stripped, segmented or CT "
                 "volume?")
  span, skew = trained_span(domain, "interior_skew", signed=True), figures.get("interior_skew")
  if span and skew is not None and skew > span[1] + SKEW_MARGIN:
    found.append(f"a contrast unlike {TRAINED}': the head's interior skews bright (Kelly "
                 f"skewness {skew:+.2f}, trained {span[0]:+.2f} to {span[1]:+.2f}; margin "
                 f"{SKEW_MARGIN:g}): a dark bulk with a bright tail, as white matter and CSF "
                 "are in a T2, where a T1's white matter is its bright bulk: a T2 or another "
                 "contrast?")
  flat = figures.get("flat_share")
  if flat is not None and flat > FLAT_LIMIT:
    found.append(f"piecewise constant: {flat:.1%} of the head's voxels equal a neighbour's "
                 f"value exactly, where an MR image's are at most {FLAT_LIMIT:.0%}: a "
                 "segmentation or label map, not an image?")
  spread = figures.get("interior_spread")
  if spread is not None and spread < SPREAD_LIMIT:
    found.append(f"a uniform interior: the head's inner intensities span {spread:.3g} of their "
                 f"median (10% to 90%), where an MR head's span at least {SPREAD_LIMIT:g}: a "
                 "CT, whose brain lies within a few Hounsfield units?")
  span, upper = trained_span(domain, "upper_band"), figures["upper_band"]
  if span and not span[0] / BAND_MARGIN <= upper <= span[1] * BAND_MARGIN:
    how = "smoother" if upper < span[0] / BAND_MARGIN else "sharper or noisier"
    found.append(f"{how} than {TRAINED}: {upper:.3g} of the kept band's energy in its outer "
                 f"half, trained {span[0]:.3g}-{span[1]:.3g} (margin x{BAND_MARGIN:g})")
  span, removed = trained_span(domain, "removed_band"), figures.get("removed_band")
  if (removed_band and span and removed is not None and span[0] >= REMOVED_FLOOR
      and removed < span[0] / BAND_MARGIN):
    found.append(f"band-limited differently: {removed:.3g} of its energy in the band the "
                 f"acquisition removes, where {TRAINED} held {span[0]:.3g}-{span[1]:.3g} "
                 f"(margin x{BAND_MARGIN:g})")
  return found
