"""Where `mdcsrn-sr` writes and how: an output per input for folders, globs over HCP's
layout and subjects sharing a file name, nothing replaced unasked, writes that leave no
temporary file, and memory checks that see a job's cgroup."""
import os

import nibabel as nib
import numpy as np
import pytest

from mdcsrn_tf import files, hardware
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.infer import grids, outputs, predict, weights_choice
from command_cases import run_in_process
from conftest import run_predict


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
    for name, voxels in (("T1w_acpc_dc_restore.nii.gz", np.arange(1, 121).reshape(4, 5, 6)),
                         ("brainmask_fs.nii.gz", np.ones((4, 5, 6)))):  # a scan has contrast
      nib.Nifti1Image(voxels.astype(np.float32), np.eye(4)).to_filename(folder / name)
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
  result = run_predict(*scans, "--out_dir", out, "--weights", generator_weights, "--tile", "16")
  assert result.returncode == 0, result.stderr
  written = [str(out / "100206_sr.nii.gz"), str(out / "100307_sr.nii.gz")]
  assert result.stdout.split() == written
  assert f"2 volumes named by the first part of their paths that differs (e.g. 100206 for " \
         f"{scans[0]}); outputs in {out}" in result.stderr
  # a second run does not replace the first one's outputs unasked
  stamps = [os.stat(path).st_mtime_ns for path in written]
  again = run_predict(*scans, "--out_dir", out, "--weights", generator_weights)
  assert again.returncode == 2 and again.stderr.strip().splitlines() == [
      f"error: {written[0]}: exists already (and 3 more); pass --overwrite to replace, or "
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


def meminfo_with(tmp_path, available) -> dict:
  """The sources of hardware.available_memory where `available` bytes (a multiple of 1 KiB)
  are available."""
  meminfo = tmp_path / "meminfo"
  meminfo.write_text(f"MemTotal: {2 * available // 1024} kB\nMemAvailable: {available // 1024} kB\n")
  sources = {"meminfo": meminfo, "proc_cgroup": tmp_path / "no_cgroups"}
  assert hardware.available_memory(**sources) == available
  return sources


def test_a_grid_change_is_refused_when_it_needs_more_than_the_available_memory(tmp_path):
  sources = meminfo_with(tmp_path, 64 * 64 * 6 * 64)  # 64 B per voxel of the HR grid
  grids.check_memory("scan.nii.gz", (64, 64, 6), **sources)
  with pytest.raises(InputError, match="^scan.nii.gz: .* 64 x 64 x 7 voxels .*; ask for a "
                                       "smaller --scale or a larger --target_voxel$"):
    grids.check_memory("scan.nii.gz", (64, 64, 7), **sources)
  # where the kernel does not say (not Linux), there is nothing to compare with
  nothing = {"meminfo": tmp_path / "absent", "proc_cgroup": tmp_path / "absent"}
  assert hardware.available_memory(**nothing) is None
  grids.check_memory("scan.nii.gz", (10**6,) * 3, **nothing)


@pytest.mark.parametrize("grid_change, passes, keep_band, largest", [
    (False, 1, False, (64, 64, 24)),  # 4 float32 volumes: 16 B per voxel
    (False, 2, False, (64, 64, 16)),  # and with TTA 6 (the mean, squares, a pass's input): 24 B
    (False, 16, False, (64, 64, 16)),  # whatever the number of passes
    (True, 1, False, (64, 64, 6)),  # a grid change: the interpolation's 64 B, before either
    (True, 16, False, (64, 64, 6)),
    (False, 1, True, (64, 64, 13)),  # the measured-band projection's 12 B more: 28 B
    (False, 2, True, (64, 64, 10)),  # 36 B
    (True, 1, True, (64, 64, 6)),  # the interpolation's 64 B, still the most
])
def test_the_memory_a_run_needs_counts_test_time_augmentations_volumes(
    tmp_path, grid_change, passes, keep_band, largest):
  """With 1.5 MiB available: 98,304 voxels at 16 B, 65,536 at 24 B, 56,173 at 28 B, 43,690
  at 36 B, 24,576 at 64 B."""
  sources = meminfo_with(tmp_path, 3 * 2**19)
  grids.check_memory("scan.nii.gz", largest, grid_change, passes, keep_band, **sources)
  larger = (*largest[:2], largest[2] + 1)
  with pytest.raises(InputError, match=("with --tta" if passes > 1 else "GiB, more")):
    grids.check_memory("scan.nii.gz", larger, grid_change, passes, keep_band, **sources)


def test_mdcsrn_sr_refuses_tta_it_has_no_memory_for_before_the_network_loads(
    tmp_path, write_nifti, monkeypatch, capsys):
  scan = str(write_nifti(np.arange(1, 32 * 32 * 16 + 1, dtype=np.float32).reshape(32, 32, 16)))
  voxels = 32 * 32 * 16
  # per voxel: one pass holds 4 float32 volumes (16 B), --tta 2 or more 6 (24 B); the default
  # weights' measured-band projection, where their card asks for it, 12 B more either way
  _, keep_band = weights_choice.trained_settings(weights_choice.weights_to_use())
  projection = 12 if keep_band else 0
  monkeypatch.setattr(hardware, "available_memory", lambda **_: voxels * (20 + projection))
  predict.check_input(scan, keep_band=keep_band)  # one pass fits
  status, lines, _ = run_in_process("predict", [scan, str(tmp_path / "sr.nii.gz"), "--tta",
                                                "2"], monkeypatch, capsys)
  needed, available = voxels * (24 + projection) / 2**30, voxels * (20 + projection) / 2**30
  assert status == 2 and lines == [
      f"error: {scan}: the HR grid of 32 x 32 x 16 voxels needs about {needed:.3g} GiB with "
      f"--tta 2, more than the {available:.3g} GiB of memory available; ask for fewer --tta "
      "passes"]
  assert not (tmp_path / "sr.nii.gz").exists()


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
  grids.check_memory("scan.nii.gz", (1000, 1000, 29 * gib // 64 // 10**6), **sources)
  with pytest.raises(InputError, match="more than the 29 GiB of memory available"):
    grids.check_memory("scan.nii.gz", (1000, 1000, 29 * gib // 64 // 10**6 + 1), **sources)
