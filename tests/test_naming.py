"""Subject names from paths (data/naming.py): the first part of the paths that differs."""
import pytest

from mdcsrn_tf.data import naming
from mdcsrn_tf.errors import InputError

HCP = "/data/HCP/{}/T1w/T1w_acpc_dc_restore.nii.gz"


def test_hcp_scans_are_named_by_their_subject_folder():
  paths = [HCP.format(s) for s in ("100206", "100307", "996782")]
  assert naming.subject_names(paths) == ["100206", "100307", "996782"]
  assert naming.naming_note(paths, naming.subject_names(paths)) == (
      f"3 volumes named by the first part of their paths that differs (e.g. 100206 for "
      f"{paths[0]})")


def test_files_of_one_folder_keep_their_own_names_and_need_no_note():
  paths = ["scans/a.nii.gz", "scans/b.nii", "scans/c.d.nii.gz"]
  assert naming.subject_names(paths) == ["a", "b", "c.d"]
  assert naming.naming_note(paths, naming.subject_names(paths)) is None
  assert naming.subject_names(["only/one/scan.nii.gz"]) == ["scan"]


def test_relative_and_absolute_spellings_of_one_folder_agree(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert naming.subject_names(["s1/T1w.nii.gz", str(tmp_path / "s2" / "T1w.nii.gz")]) == [
      "s1", "s2"]


def test_sessions_of_one_subject_fall_back_to_the_whole_path_below_the_shared_folders():
  paths = ["bids/sub-01/ses-1/anat/sub-01_T1w.nii.gz", "bids/sub-01/ses-2/anat/sub-01_T1w.nii.gz",
           "bids/sub-02/ses-1/anat/sub-02_T1w.nii.gz"]
  names = naming.subject_names(paths)
  assert names == ["sub-01_ses-1_anat_sub-01_T1w", "sub-01_ses-2_anat_sub-01_T1w",
                   "sub-02_ses-1_anat_sub-02_T1w"]


@pytest.mark.parametrize("paths, message", [
    (["a/x.nii.gz", "a/./x.nii.gz"], "a/./x.nii.gz: named twice"),
    (["a/x.nii.gz", "a/x.nii"], "a/x.nii.gz and a/x.nii differ only in their suffix; rename one"),
])
def test_paths_that_cannot_get_two_names_are_refused(paths, message):
  with pytest.raises(InputError, match="^" + message.replace(".", r"\.") + "$"):
    naming.subject_names(paths)


def test_manifest_names_are_kept_unless_two_are_alike():
  paths = [HCP.format("100206"), HCP.format("100307")]
  assert naming.unique_names(["a", "b"], paths) == ["a", "b"]
  assert naming.unique_names(["T1w", "T1w"], paths) == ["100206", "100307"]
