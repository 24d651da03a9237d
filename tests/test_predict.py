"""`mdcsrn-sr` end to end: NIfTI geometry kept, input untouched, --scale, one-line errors."""
import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import keras
import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf.acquisition import Acquisition
from mdcsrn_tf import files, hardware, weights
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.infer import inference, outputs, predict
from mdcsrn_tf.data import nifti
from mdcsrn_tf.weights import card as cards
from mdcsrn_tf.weights.card import ModelCard
from mdcsrn_tf.models import build_model

SHAPE = (20, 26, 17)
AFFINE = np.array([[0.0, -0.7, 0.0, 90.0], [0.0, 0.0, 0.7, -120.0], [0.7, 0.0, 0.0, -80.0],
                   [0.0, 0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def generator_weights(tmp_path_factory):
  keras.utils.set_random_seed(5)
  random_b2u4 = build_model("b2u4", identity_init=False)
  return weights.save_generator(random_b2u4, tmp_path_factory.mktemp("w") / "b2u4",
                                ModelCard("b2u4"))


@pytest.fixture
def scan(write_nifti):
  rng = np.random.default_rng(3)
  return write_nifti((rng.random(SHAPE) * 900).astype(np.int16), "scan.nii.gz", affine=AFFINE)


def sha256(path):
  return hashlib.sha256(open(path, "rb").read()).hexdigest()


def run_cli(*args):
  return subprocess.run([sys.executable, "-m", "mdcsrn_tf.infer", *map(str, args)],
                        capture_output=True, text=True, timeout=300)


def test_cli_keeps_geometry_and_intensity_range_and_leaves_input_alone(tmp_path, scan,
                                                                      generator_weights):
  before = sha256(scan)
  out = tmp_path / "sr.nii.gz"
  result = run_cli(scan, out, "--weights", generator_weights, "--tile", "12", "--batch", "2")
  assert result.returncode == 0, result.stderr
  assert sha256(scan) == before
  source, written = nib.load(scan), nib.load(out)
  assert written.shape == SHAPE
  np.testing.assert_allclose(written.affine, source.affine)
  np.testing.assert_allclose(written.header.get_zooms(), source.header.get_zooms())
  # the same numbers as the library: normalise, tiled SR, de-normalise
  volume = source.get_fdata(dtype=np.float32)
  model, _ = weights.load_generator(generator_weights)
  expected = inference.super_resolve(model, volume / volume.max(), tile=12, margin=3,
                                     progress=False) * volume.max()
  np.testing.assert_allclose(written.get_fdata(dtype=np.float32), expected, rtol=1e-4,
                             atol=1e-3)
  assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_scale_gives_hr_zooms_and_the_same_field_of_view(tmp_path, write_nifti,
                                                        generator_weights):
  lowres_affine = AFFINE @ np.diag([2.0, 2.0, 1.0, 1.0])
  small = np.random.default_rng(4).random((10, 13, 17)).astype(np.float32) * 100
  lowres = write_nifti(small, "lowres.nii.gz", affine=lowres_affine)
  model, _ = weights.load_generator(generator_weights)
  out = predict.super_resolve_file(lowres, tmp_path / "sr.nii.gz", model, tile=16,
                                   scale=[2, 2, 1], progress=False)
  written = nib.load(out)
  assert written.shape == SHAPE
  np.testing.assert_allclose(written.header.get_zooms(), (0.7, 0.7, 0.7))
  np.testing.assert_allclose(written.affine, AFFINE)

  def extent(image):  # world span of the grid: n voxels of its voxel size per axis
    return np.abs(image.affine[:3, :3]) @ np.array(image.shape)

  np.testing.assert_allclose(extent(written), extent(nib.load(lowres)))
  # --target_voxel 0.7 picks the same grid from the 1.4 x 1.4 x 0.7 mm voxels
  assert predict.hr_grid((10, 13, 17), (1.4, 1.4, 0.7), target_voxel=0.7) == (SHAPE, (2, 2, 1))


def test_target_voxel_reads_the_headers_unit(tmp_path, write_nifti, generator_weights):
  """The same 1.4 x 1.4 x 0.7 mm voxels stored in microns and in metres: --target_voxel 0.7
  (mm) gives the same grid; a header whose unit code names no unit is refused."""
  small = np.random.default_rng(4).random((10, 13, 17)).astype(np.float32) * 100
  for unit, per_mm in (("micron", 1000.0), ("meter", 1e-3)):
    in_unit = np.diag([per_mm] * 3 + [1.0]) @ AFFINE @ np.diag([2.0, 2.0, 1.0, 1.0])
    image = nib.Nifti1Image(small, in_unit)
    image.header.set_xyzt_units(xyz=unit)
    path = tmp_path / f"{unit}.nii.gz"
    image.to_filename(path)
    _, _, hr_shape, factors = predict.check_input(path, target_voxel=0.7)
    assert hr_shape == SHAPE and factors == (2, 2, 1), unit
  image.header["xyzt_units"] = 6
  image.to_filename(tmp_path / "six.nii.gz")
  with pytest.raises(InputError, match=r"six\.nii\.gz: header's spatial unit \(xyzt_units "
                                       r"code 6\)"):
    predict.check_input(tmp_path / "six.nii.gz", target_voxel=0.7)


def test_negative_intensities_are_mapped_by_their_range_and_restored(tmp_path, colin27_crop,
                                                                     generator_weights):
  """A z-scored head (mean 0, std 1, the background strongly negative): the network sees it
  on [0, 1] by its range, as a magnitude image, and the output comes back in the input's
  range instead of being clipped to 0."""
  head = nib.load(colin27_crop(tmp_path / "head.nii.gz"))
  voxels = head.get_fdata(dtype=np.float32)
  z_scored = (voxels - voxels.mean()) / voxels.std()
  path = tmp_path / "z.nii.gz"
  nib.Nifti1Image(z_scored, head.affine).to_filename(path)
  result = run_cli(path, tmp_path / "sr.nii.gz", "--weights", generator_weights, "--tile", "12")
  assert result.returncode == 0, result.stderr
  written = nib.load(tmp_path / "sr.nii.gz").get_fdata(dtype=np.float32)
  low, spread = z_scored.min(), z_scored.max() - z_scored.min()
  expected = inference.super_resolve(weights.load_generator(generator_weights)[0],
                                     (z_scored - low) / spread, tile=12, margin=3,
                                     progress=False) * spread + low
  np.testing.assert_allclose(written, expected, atol=1e-3 * spread)
  assert written.min() < 0 and (written < 0).mean() > 0.1  # the background kept below 0


def test_scale_interpolates_as_the_weights_were_trained(tmp_path, write_nifti):
  """Weights whose card's acquisition places zero-filled get a Fourier-interpolated input."""
  keras.utils.set_random_seed(6)
  base = weights.save_generator(build_model("b2u4", identity_init=False), tmp_path / "zf",
                                ModelCard("b2u4", acquisition=Acquisition(placement="zero_filled")))
  model, card = predict.load_model(base)
  assert card.acquisition.placement == "zero_filled"
  assert predict.load_model(tmp_path / "zf.weights.h5", "b2u4")[1].acquisition == card.acquisition
  small = (np.random.default_rng(7).random((10, 13, 17)) * 100 + 50).astype(np.float32)
  lowres = write_nifti(small, "lowres.nii.gz", affine=AFFINE @ np.diag([2.0, 2.0, 1.0, 1.0]))
  out = predict.super_resolve_file(lowres, tmp_path / "sr.nii.gz", model, tile=16,
                                       scale=[2, 2, 1], progress=False,
                                       acquisition=card.acquisition)
  fourier = np.abs(np.fft.ifftn(np.fft.ifftshift(np.pad(
      np.fft.fftshift(np.fft.fftn(small, axes=(0, 1)), axes=(0, 1)),
      [(5, 5), (7, 6), (0, 0)]), axes=(0, 1)), axes=(0, 1))) * 4
  expected = inference.super_resolve(model, fourier / fourier.max(), tile=16,
                                     progress=False) * fourier.max()
  np.testing.assert_allclose(nib.load(out).get_fdata(dtype=np.float32), expected, rtol=1e-4,
                             atol=1e-3)


def test_folder_input_writes_one_output_per_scan_and_skips_hidden_files(tmp_path):
  folder = tmp_path / "in"
  folder.mkdir()
  for name in ("a.nii.gz", "b.nii"):
    nib.Nifti1Image(np.ones((4, 5, 6), np.float32), np.eye(4)).to_filename(folder / name)
  (folder / ".a_sr.nii.gz.k2j4.tmp.nii.gz").write_bytes(b"")  # left by a killed write
  assert outputs.plan_outputs([str(folder)], str(tmp_path / "out")) == [
      (str(folder / "a.nii.gz"), str(tmp_path / "out" / "a_sr.nii.gz")),
      (str(folder / "b.nii"), str(tmp_path / "out" / "b_sr.nii"))]


def hcp_tree(root, subjects):
  """HCP's layout with a brain mask and a hidden leftover beside each scan: the scans."""
  scans = []
  for subject in subjects:
    folder = root / subject / "T1w"
    folder.mkdir(parents=True)
    for name in ("T1w_acpc_dc_restore.nii.gz", "brainmask_fs.nii.gz"):
      nib.Nifti1Image(np.ones((4, 5, 6), np.float32), np.eye(4)).to_filename(folder / name)
    (folder / ".T1w_acpc_dc_restore.nii.gz.x.tmp.nii.gz").write_bytes(b"")
    scans.append(str(folder / "T1w_acpc_dc_restore.nii.gz"))
  return scans


def test_a_glob_over_hcp_names_outputs_by_subject_or_mirrors_the_tree(tmp_path):
  scans = hcp_tree(tmp_path / "HCP", ["100206", "100307"])
  pattern = str(tmp_path / "HCP" / "*" / "T1w" / "T1w_acpc_dc_restore.nii.gz")
  out = tmp_path / "sr"
  assert outputs.plan_outputs([pattern], str(out)) == [
      (scans[0], str(out / "100206_sr.nii.gz")), (scans[1], str(out / "100307_sr.nii.gz"))]
  assert outputs.plan_outputs([pattern], str(out), layout="mirror") == [
      (scans[0], str(out / "100206" / "T1w" / "T1w_acpc_dc_restore_sr.nii.gz")),
      (scans[1], str(out / "100307" / "T1w" / "T1w_acpc_dc_restore_sr.nii.gz"))]
  # a recursive folder input finds every NIfTI file below it, masks included, hidden ones not
  found = outputs.expand_inputs([str(tmp_path / "HCP")], recursive=True)
  assert found == sorted(scans + [s.replace("T1w_acpc_dc_restore", "brainmask_fs")
                                  for s in scans])
  with pytest.raises(InputError, match="folder holds no .nii"):
    outputs.expand_inputs([str(tmp_path / "HCP")])


def test_subjects_sharing_a_file_name_get_one_output_each_in_a_new_out_dir(
    tmp_path, generator_weights):
  scans = hcp_tree(tmp_path / "HCP", ["100206", "100307"])
  out = tmp_path / "new" / "sr"
  result = run_cli(*scans, "--out_dir", out, "--weights", generator_weights, "--tile", "16")
  assert result.returncode == 0, result.stderr
  written = [str(out / "100206_sr.nii.gz"), str(out / "100307_sr.nii.gz")]
  assert result.stdout.split() == written
  assert f"2 volumes named by the first part of their paths that differs (e.g. 100206 for " \
         f"{scans[0]}); outputs in {out}" in result.stderr
  # a second run does not replace the first one's outputs unasked
  stamps = [os.stat(path).st_mtime_ns for path in written]
  again = run_cli(*scans, "--out_dir", out, "--weights", generator_weights)
  assert again.returncode == 2 and again.stderr.strip().splitlines() == [
      f"error: {written[0]}: exists already (and 1 more); pass --overwrite to replace, or "
      "choose another --out_dir"]
  assert [os.stat(path).st_mtime_ns for path in written] == stamps


def test_a_failed_write_names_the_users_path_and_leaves_no_temporary_file(tmp_path):
  target = tmp_path / "taken.nii.gz"
  target.mkdir()  # the rename onto it fails

  def write(temporary):
    with open(temporary, "wb") as file:
      file.write(b"data")

  with pytest.raises(OSError) as error:
    files.write_atomically(target, write)
  assert error.value.filename == str(target)
  assert [p.name for p in tmp_path.iterdir()] == ["taken.nii.gz"]


def test_an_exclusive_write_on_a_file_system_without_hard_links_still_writes(tmp_path,
                                                                            monkeypatch):
  """Where the link that makes an exclusive create atomic is refused (EPERM: FAT, some
  network file systems), the file is renamed into place as any other write is."""
  import errno  # pylint: disable=import-outside-toplevel

  def no_links(source, destination):
    raise OSError(errno.EPERM, "Operation not permitted", destination)

  monkeypatch.setattr(os, "link", no_links)
  files.write_text_atomically(tmp_path / "made.json", "{}\n", exclusive=True)
  assert [(p.name, p.read_text()) for p in tmp_path.iterdir()] == [("made.json", "{}\n")]


def test_a_grid_change_is_refused_when_it_needs_more_than_the_available_memory(tmp_path):
  meminfo = tmp_path / "meminfo"
  needed = 100 * 100 * 10 * predict.HR_BYTES_PER_VOXEL
  meminfo.write_text(f"MemTotal: {2 * needed // 1024} kB\nMemAvailable: {needed // 1024} kB\n")
  sources = {"meminfo": meminfo, "proc_cgroup": tmp_path / "no_cgroups"}
  assert hardware.available_memory(**sources) == needed // 1024 * 1024
  predict.check_memory("scan.nii.gz", (100, 100, 10), **sources)
  with pytest.raises(predict.InputError, match="^scan.nii.gz: .* 100 x 100 x 11 voxels"):
    predict.check_memory("scan.nii.gz", (100, 100, 11), **sources)
  # where the kernel does not say (not Linux), there is nothing to compare with
  nothing = {"meminfo": tmp_path / "absent", "proc_cgroup": tmp_path / "absent"}
  assert hardware.available_memory(**nothing) is None
  predict.check_memory("scan.nii.gz", (10**6,) * 3, **nothing)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_memory_cgroup_below_the_machines_memory_is_what_is_available(tmp_path, version):
  """A batch job's --mem=32G on a 512 GiB node: its cgroup allows 32 GiB less what it uses,
  and the tightest of the job's cgroup and their ancestors counts; "max" (v2) and v1's
  2^63 - 4096 mean no limit."""
  gib = 2**30
  meminfo = tmp_path / "meminfo"
  meminfo.write_text(f"MemTotal: {512 * gib // 1024} kB\nMemAvailable: {500 * gib // 1024} kB\n")
  if version == "v2":
    lines, mount, names = "0::/slurm/uid_1/job_7\n", tmp_path / "cg", ("memory.max",
                                                                       "memory.current")
    limits = {"slurm": "max", "slurm/uid_1": "max", "slurm/uid_1/job_7": str(32 * gib)}
  else:
    lines = "12:pids:/slurm/job_7\n4:memory:/slurm/job_7\n1:name=systemd:/\n0::/\n"
    mount, names = tmp_path / "cg" / "memory", ("memory.limit_in_bytes",
                                                 "memory.usage_in_bytes")
    limits = {"": str(2**63 - 4096), "slurm": str(64 * gib), "slurm/job_7": str(32 * gib)}
  for folder, limit in limits.items():
    (mount / folder).mkdir(parents=True, exist_ok=True)
    (mount / folder / names[0]).write_text(limit + "\n")
    (mount / folder / names[1]).write_text(f"{3 * gib}\n")
  (tmp_path / "cgroup").write_text(lines)
  sources = {"meminfo": meminfo, "proc_cgroup": tmp_path / "cgroup",
             "cgroup_root": tmp_path / "cg"}
  assert hardware.available_memory(**sources) == 29 * gib
  predict.check_memory("scan.nii.gz", (1000, 1000, 29 * gib // 64 // 10**6), **sources)
  with pytest.raises(predict.InputError, match="more than the 29 GiB of memory available"):
    predict.check_memory("scan.nii.gz", (1000, 1000, 29 * gib // 64 // 10**6 + 1), **sources)


def oblique(zooms, origin):
  """An affine a qform can hold: 30 degrees about z, then the voxel size."""
  cos, sin = np.cos(np.pi / 6), np.sin(np.pi / 6)
  affine = np.eye(4)
  affine[:3, :3] = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]]) @ np.diag(zooms)
  affine[:3, 3] = origin
  return affine


@pytest.mark.parametrize("forms", ["qform", "sform", "both"])
def test_scale_keeps_the_header_coherent(tmp_path, colin27_crop, generator_weights, forms):
  """qform and sform keep their codes, and both matrices and pixdim get the HR voxel."""
  crop = nib.load(colin27_crop(tmp_path / "crop.nii.gz", shape=(16, 20, 12)))
  header = crop.header.copy()  # Colin27 has an sform (code 4) and no qform
  if forms != "sform":
    header.set_qform(oblique(header.get_zooms(), crop.affine[:3, 3]), code=1)
  if forms == "qform":
    header.set_sform(None, code=0)
  source = tmp_path / f"{forms}.nii.gz"
  nib.Nifti1Image(np.asarray(crop.dataobj), None, header).to_filename(source)
  before = nib.load(source).header
  out = predict.super_resolve_file(source, tmp_path / "sr.nii.gz",
                                       weights.load_generator(generator_weights)[0], tile=16,
                                       scale=[2, 2, 1], progress=False)
  after = nib.load(out).header
  np.testing.assert_allclose(after.get_zooms(), np.multiply(before.get_zooms(), [0.5, 0.5, 1]),
                             rtol=1e-6)
  hr_to_input = np.diag([0.5, 0.5, 1.0, 1.0])
  present = ("qform", "sform") if forms == "both" else (forms,)
  for form in ("qform", "sform"):
    matrix, code = getattr(before, f"get_{form}")(coded=True)
    new_matrix, new_code = getattr(after, f"get_{form}")(coded=True)
    assert new_code == code and bool(code) == (form in present), form
    if code:
      np.testing.assert_allclose(new_matrix, matrix @ hr_to_input, atol=1e-4)
      np.testing.assert_allclose(np.linalg.norm(new_matrix[:3, :3], axis=0), after.get_zooms(),
                                 rtol=1e-5)


SIGTERM_DURING_WRITE = textwrap.dedent("""
    import os, signal, sys
    import nibabel as nib
    from mdcsrn_tf.infer import __main__ as command

    write = nib.Nifti1Image.to_filename

    def write_then_terminated(image, path, **kwargs):
      write(image, path, **kwargs)  # the hidden temporary file holds the whole output now
      print(sorted(os.listdir(os.path.dirname(path))), flush=True)
      os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` arriving at this moment

    nib.Nifti1Image.to_filename = write_then_terminated
    sys.argv = ["mdcsrn-sr", *sys.argv[1:]]
    command.run()
    """)


def run_interrupted(script, tmp_path, scan, generator_weights):
  """(mdcsrn-sr run by `script` into an empty folder, that folder)."""
  out = tmp_path / "out"
  out.mkdir()
  result = subprocess.run([sys.executable, "-c", script, str(scan), str(out / "sr.nii.gz"),
                           "--weights", generator_weights],
                          capture_output=True, text=True, timeout=300)
  return result, out


def test_sigterm_removes_the_temporary_output_and_exits_143(tmp_path, scan, generator_weights):
  result, out = run_interrupted(SIGTERM_DURING_WRITE, tmp_path, scan, generator_weights)
  assert result.returncode == 128 + signal.SIGTERM, result.stderr
  assert ".sr.nii.gz." in result.stdout and ".tmp.nii.gz" in result.stdout  # it was there
  assert not list(out.iterdir())


SIGINT_DURING_LONG_CALL = textwrap.dedent("""
    import os, signal, sys, time
    import nibabel as nib
    from mdcsrn_tf.infer import __main__ as command

    write = nib.Nifti1Image.to_filename

    def write_then_interrupted_in_a_long_call(image, path, **kwargs):
      write(image, path, **kwargs)
      print(sorted(os.listdir(os.path.dirname(path))), flush=True)
      # the main thread sits in one long call that runs no Python, as in a TensorFlow op:
      # Ctrl-C reaches another thread, and Python's handler waits for the main thread
      signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(600)

    nib.Nifti1Image.to_filename = write_then_interrupted_in_a_long_call
    sys.argv = ["mdcsrn-sr", *sys.argv[1:]]
    command.run()
    """)


def test_sigint_is_answered_while_the_main_thread_is_busy(tmp_path, scan, generator_weights):
  # answered within the 300 s timeout, not after the script's 600 s sleep
  result, out = run_interrupted(SIGINT_DURING_LONG_CALL, tmp_path, scan, generator_weights)
  assert result.returncode == 128 + signal.SIGINT, result.stderr
  assert result.stderr.splitlines()[-1] == "stopped by SIGINT"
  assert "Traceback" not in result.stderr
  assert ".sr.nii.gz." in result.stdout  # the temporary output was there, and is removed
  assert not list(out.iterdir())


def test_missing_shipped_weights_is_one_clear_error(monkeypatch, tmp_path):
  monkeypatch.setattr(weights, "SHIPPED_DIR", str(tmp_path))
  with pytest.raises(weights.InputError, match="--weights"):
    weights.default_weights("l1")


def test_shipped_l1_weights_are_the_default(tmp_path, scan):
  result = run_cli(scan, tmp_path / "out.nii.gz", "--tile", "32")
  assert result.returncode == 0 and not result.stderr, result.stderr
  volume = nib.load(scan).get_fdata(dtype=np.float32)
  shipped, _ = weights.load_generator(weights.shipped()["l1"])
  expected = inference.super_resolve(shipped, volume / volume.max(), tile=32, margin=3,
                                     progress=False) * volume.max()
  np.testing.assert_allclose(nib.load(tmp_path / "out.nii.gz").get_fdata(dtype=np.float32),
                             expected, rtol=1e-4, atol=1e-3)


def test_a_cards_warning_is_printed_before_the_output(tmp_path, scan, generator_weights):
  warned = str(tmp_path / "warned")
  for suffix in (weights.WEIGHTS_SUFFIX, weights.CARD_SUFFIX):
    shutil.copy(generator_weights + suffix, warned + suffix)
  card = weights.read_card(warned)
  cards.write(warned, dataclasses.replace(card, warning="below the bar on Colin27"))
  result = run_cli(scan, tmp_path / "out.nii.gz", "--weights", warned, "--tile", "12")
  assert result.returncode == 0, result.stderr
  assert result.stderr.splitlines() == ["warning: below the bar on Colin27"]


def test_weights_shipped_with_the_package_are_named_by_their_name(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # no file of that name here
  for name in weights.shipped_names():
    model, card = predict.load_model(name)
    assert f"{card.model}_{card.shipped_as}" == name
    assert predict.trained_acquisition(predict.weights_to_use(name)) == card.acquisition
