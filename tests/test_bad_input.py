"""Hostile but fair input, one row per case: the command must end in exactly one
`error: ...` line on stderr that names what the user gave, exit status 2, and leave every
file as it was (no output, no temporary file, no half-made workdir). The inputs are real
Colin27 crops.

Every command is a fresh process, and every row is refused before TensorFlow loads except
those whose fault shows only once a network or a pipeline runs (LOADS_TENSORFLOW): checks
that need no network come first, so a user waits for nothing before the error.
"""
import os

import pytest

from bad_input_world import build_world
from command_cases import assert_refused, run_in_subprocess, state, tree_state, words

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = f"train --flagfile={os.path.join(REPO, 'flags', 'smoke_pretrain.cfg')}"

# (command line, exit status, the error line's text after "error: " with * for any text,
#  paths that must not exist or stay as they were); {name} is a path of the `world` fixture,
# {out} an empty folder of the case's own.
CASES = [
    ("predict {scan} {out}/sr.nii.gz --weights {corrupted}", 2,
     "{corrupted}.weights.h5: SHA-256 * model card *", ["{out}/sr.nii.gz"]),
    ("predict {scan} {out}/sr.nii.gz --weights {nan_weights}", 2,
     "{scan}: * output voxels are NaN or Inf with weights {nan_weights} *", ["{out}/sr.nii.gz"]),
    ("predict {scan} {scan} --out_dir {out}", 2, "{scan}: named twice", ["{out}/scan_sr.nii.gz"]),
    ("predict {pair}/*.nii --out_dir {out}", 2,
     "{pair}/*.nii: the pattern matches no .nii or .nii.gz file", []),
    ("predict {scan} --out_dir {scan}", 2, "--out_dir {scan}: exists and is not a folder", []),
    # one job per subject into one folder: the second would take the first one's name
    ("predict {other} --out_dir {earlier_job}", 2,
     "{earlier_job}/scan_sr.nii.gz: exists already; pass --overwrite to replace, or choose "
     "another --out_dir (a single input is named by its file name alone: give each job's "
     "INPUT OUTPUT instead)", ["{earlier_job}/scan_sr.nii.gz"]),
    ("predict {scan} {out}/sr.nii.gz --weights b4u4_l1 --gan", 2,
     "give --weights or --gan (the shipped GAN weights), not both", []),
    ("predict {pair} {out}/sr.nii.gz --recursive", 2,
     "--recursive needs --out_dir (it says how inputs map to outputs there)", []),
    ("predict {scan} {out}/sr.nii.gz --out_layout=mirror", 2,
     "--out_layout needs --out_dir (it says how inputs map to outputs there)", []),
    ("predict {scan} --out_dir {out} --out_layout=flat", 2,
     "--out_layout must be one of names, mirror, got 'flat'", []),
    ("predict {scan} {out}/sr.nii.gz --scale=inf,1,1", 2, "--scale needs three finite *inf*", []),
    ("predict {scan} {out}/sr.nii.gz --scale=1e6,1,1", 2,
     "{scan}: the HR grid of 37000000 x 45 x 29 voxels needs about * GiB, more than the *", []),
    ("predict {scan} {out}/sr.nii.gz --target_voxel=1e-4", 2,
     "{scan}: the HR grid of 370000 x 450000 x 290000 voxels needs about *", []),
    ("predict {scan} {out}/sr.nii.gz --target_voxel=1e-320", 2,
     "{scan}: the HR grid * too large to represent", []),
    ("predict {scan} {out}/sr.nii.gz --target_voxel=nan", 2, "--target_voxel must be *nan", []),
    ("predict {scan} {out}/sr.nii.gz --scale=2,2,1 --target_voxel=1", 2,
     "give --scale or --target_voxel, not both", []),
    ("predict {scan} {taken}", 2, "{taken}: is a folder*", ["{taken}"]),
    ("predict {hidden_only} --out_dir {out}", 2, "{hidden_only}: folder holds no *", []),
    ("predict {pair}/x.nii.gz {pair}/x_sr.nii.gz --out_dir {pair}", 2,
     "{pair}/x_sr.nii.gz: output would overwrite its input", ["{pair}/x_sr.nii.gz"]),
    ("predict {scan} {out}/sr.nii.gz --tile=big", 2, "--tile must be auto or an integer >= 1, "
     "got 'big'", []),
    ("export --weights {weights} --out {out}/g.onnx --format=onnx --tile=64 --margin=5", 2,
     "--tile, --margin: the SavedModel's tiling; an ONNX export is the network alone, its "
     "caller tiles (docs/serving.md)", []),
    ("release --weights={shipped} --out={out}/released --check_crop=0", 2,
     "--check_crop must be >= 7, got 0", []),
    ("release --weights={shipped} --out={out}/released --batch=0", 2,
     "--batch must be >= 1, got 0", []),
    ("prepare --list_samples --out={out}/d", 2,
     "--list_samples lists and stops; it takes no --out", []),
    ("prepare --samples --nobrain_masks --out={out}/d", 2,
     "--nobrain_masks applies to --src; *", []),
    ("export --weights {weights} --out {out}/serving/2 --tile=0", 2,
     "--tile must be auto or an integer >= 1, got '0'", []),
    ("predict {scan} {scan}", 2, "{scan}: output would overwrite its input", ["{scan}"]),
    # two scans where --out_dir was meant: the second is not replaced
    ("predict {scan} {other}", 2,
     "{other}: exists already; pass --overwrite to replace, or name another OUTPUT", ["{other}"]),
    ("predict {scan} {out}/sr.nii.gz --report {out}/qc.txt", 2,
     "{out}/qc.txt: a report is a PATH.html file", ["{out}/sr.nii.gz", "{out}/qc.txt"]),
    # refused once the output folders are made: they go again
    ("predict {scan} --out_dir {out}/new/sr --report {out}/qc.txt", 2,
     "{out}/qc.txt: a report is a PATH.html file", ["{out}/new"]),
    ("bids {hidden_only} {out}/d participant", 2,
     "{hidden_only}: not a BIDS dataset (no dataset_description.json)", ["{out}/d"]),
    ("bids {bids} {out}/d participant --participant_label 01 07", 2,
     "{bids}: no participant 07 (participants: 01, 02)", ["{out}/d"]),
    ("bids {bids} {out}/d participant --participant_label 01_a", 2,
     "'01_a' is not a BIDS label (letters and digits only)", ["{out}/d"]),
    ("bids {bids} {out}/d participant --session_label c", 2,
     "{bids}: no session c in the participants asked (sessions: a, b)", ["{out}/d"]),
    ("bids {bids} {out}/d participant --participant_label 02 --session_label a", 2,
     "{bids}: no session a in the participants asked (sessions: none)", ["{out}/d"]),
    ("bids {bids} {out}/d participant --participant_label --scale=1,1,2", 2,
     "--participant_label needs at least one label", ["{out}/d"]),
    ("bids {bids} {out}/d participant --weights {absent}", 2,
     "{absent}.weights.h5: no such weights file", ["{out}/d"]),
    ("bids {bids} {out}/d group", 2, "analysis level 'group': this app has only participant",
     ["{out}/d"]),
    ("bids {bids} {bids}/sub-01/out participant", 2,
     "{bids}/sub-01/out: the derivatives must not be written into the raw dataset's *", []),
    ("bids {bids} {out}/no/d participant", 2, "{out}/no/d: its parent folder does not exist",
     []),
    ("bids {bids} {fmriprep_out} participant", 2,
     "{fmriprep_out}: holds the derivatives of another pipeline (fMRIPrep); choose a new folder",
     ["{fmriprep_out}"]),
    ("bids {bids} {odd_out} participant", 2,
     "{odd_out}: holds the derivatives of another pipeline (unnamed); choose a new folder",
     ["{odd_out}"]),
    ("predict {absent} {out}/sr.nii.gz", 2, "{absent}: no such file", []),
    ("predict {truncated} {out}/sr.nii.gz", 2, "{truncated}: cannot read NIfTI *", []),
    ("predict {flat} {out}/sr.nii.gz", 2, "{flat}: 2D image *", []),
    ("predict {series} {out}/sr.nii.gz", 2, "{series}: 4D series *", []),
    ("predict {nan_volume} {out}/sr.nii.gz", 2, "{nan_volume}: * voxels are NaN or Inf", []),
    ("predict {scan} {out}/nowhere/sr.nii.gz", 2, "{out}/nowhere/sr.nii.gz: output folder *", []),
    ("predict {scan} {out}/sr.nii.gz --weights=b5u4_l1", 2,
     "b5u4_l1.weights.h5: no such weights file here, and no shipped weights named b5u4_l1 *",
     ["{out}/sr.nii.gz"]),
    ("export --weights {corrupted} --out {out}/serving/1", 2,
     "{corrupted}.weights.h5: SHA-256 *", ["{out}/serving"]),
    ("export --weights {weights} --out {out}", 2,
     "{out}: exists already; pass --overwrite to replace, or choose a new folder *", []),
    ("export --weights {weights} --format=onnx --out {out}/net.txt", 2,
     "{out}/net.txt: an ONNX export is a PATH.onnx file", ["{out}/net.txt"]),
    ("export --weights {weights} --format=onnx --out {scan}/net.onnx", 2,
     "{scan}/net.onnx: {scan} is not a writable folder", []),
    ("export --weights {weights} --format=tflite --out {out}/net", 2,
     "--format must be one of saved_model, onnx, got 'tflite'", []),
    ("export --weights {weights} --out {scan}/1", 2, "{scan}/1: cannot be made, {scan} is *",
     []),
    (SMOKE + " --dataset={no_path} --workdir={out}/run", 2, '{no_path}: entry 1 has no "path"',
     []),
    (SMOKE + " --dataset={subjects_5} --workdir={out}/run", 2,
     '{subjects_5}: not a data set manifest ("subjects" must be a list of entries)', []),
    (SMOKE + " --dataset={nan_train} --workdir={out}/run", 2,
     "{nan_volume}: * voxels are NaN or Inf", []),
    (SMOKE + " --dataset={other_train} --workdir={run_b1u8} --model=b1u8", 2,
     "{run_b1u8}: holds a run on other train volumes (1 added, 1 removed, e.g. other_head); "
     "resume with the same data set (its files may move) or choose another --workdir",
     ["{run_b1u8}/config.json"]),
    (SMOKE + " --dataset={good} --workdir={run_b1u8} --model=b1u8 --validation_tile=32", 2,
     "{run_b1u8}: holds a run with --validation_tile=64, this one asks for "
     "--validation_tile=32; resume with the same setting or choose another --workdir",
     ["{run_b1u8}/config.json"]),
    (SMOKE + " --dataset={good} --workdir={run_ahead} --model=b1u8 --steps=100", 2,
     "{run_ahead}: holds a run at step 300, beyond --steps=100; give --steps of at least 300, "
     "or another --workdir", ["{run_ahead}/checkpoints"]),
    (SMOKE + " --dataset={good} --workdir={run_b1u8} --model=fsrcnn", 2,
     "{run_b1u8}: holds a run with --model=b1u8, this one asks for --model=fsrcnn; *",
     ["{run_b1u8}/config.json"]),
    ("evaluate --volumes={scan} --weights=net={nan_weights} --out_dir={out}/eval", 2,
     "scan: * output voxels are NaN or Inf with weights {nan_weights} *; not scored", []),
    ("release --weights={nan_weights} --dataset={seen_test} --out={out}/released", 2,
     "{nan_weights}: * output voxels are NaN or Inf on {scan} *; nothing written", []),
    ("evaluate --volumes={scan} --weights=l1={shipped} --factors=1,1,4 --out_dir={out}/eval", 2,
     "--weights l1: its model card says it was trained for factors 2,2,1 (k-space), "
     "zero_filled placement, not the factors 1,1,4 the flags give; *", []),
    ("evaluate --volumes={scan} --weights=linear={shipped} --out_dir={out}/eval", 2,
     "--weights linear: the name of a baseline; give each network a name of its own", []),
    ("evaluate --volumes={scan} --weights=net={shipped},net={weights} --out_dir={out}/eval", 2,
     "--weights net: the name of another --weights entry; give each network a name of its own",
     []),
    ("evaluate --volumes={scan} --plane_axes=0,0 --out_dir={out}/eval", 2,
     "--plane_axes 0,0: expected two distinct axes of 0, 1, 2", ["{out}/eval"]),
    (SMOKE + " --dataset={good} --workdir={out}/run --plane_axes=0,0", 2,
     "--plane_axes 0,0: expected two distinct axes of 0, 1, 2", ["{out}/run"]),
    (SMOKE + " --dataset={good} --workdir={out}/run --factors=2,2,4 --slice_profile=gaussian", 2,
     "--slice_profile=gaussian averages thick slices along one axis: --factors needs exactly "
     "one factor > 1, got 2,2,4", ["{out}/run"]),
    (SMOKE + " --dataset={good} --workdir={out}/run --placement=linear --lr_mode=zero_filled", 2,
     "--placement=linear and --lr_mode=zero_filled contradict each other *", ["{out}/run"]),
    ("predict {scan} {out}/sr.nii.gz --weights {bad_lr_mode} --scale=2,2,1", 2,
     "{bad_lr_mode}.json: --placement 'bicubic': expected one of nearest, linear, cubic, "
     "zero_filled", ["{out}/sr.nii.gz"]),
    ("predict {scan} {out}/sr.nii.gz --scale=1,1,4", 2,
     "{scan}: --scale/--target_voxel ask for factors 1,1,4, but *b4u4_l1 were trained for "
     "factors 2,2,1 (k-space), zero_filled placement; *", ["{out}/sr.nii.gz"]),
    ("evaluate --volumes={scan},{scan} --out_dir={out}/eval", 2, "{scan}: named twice",
     ["{out}/eval"]),
    ("evaluate --volumes={scan} --masks={mask_small} --out_dir={out}/eval", 2,
     "{mask_small}: mask of 4 x 5 x 6 voxels is not on the grid of {scan} (37 x 45 x 29)", []),
    ("evaluate --volumes={scan} --masks={mask_shifted} --out_dir={out}/eval", 2,
     "{mask_shifted}: mask's affine is not the one of {scan}, so it is not on its grid", []),
    ("evaluate --volumes={scan} --masks={mask_empty} --out_dir={out}/eval", 2,
     "{mask_empty}: mask has no non-zero voxel", []),
    ("evaluate --volumes={scan} --masks={mask_empty},{mask_small} --out_dir={out}/eval", 2,
     "--masks needs one mask per --volumes file, got 2 for 1", []),
    ("evaluate --manifest={mask_wrong} --out_dir={out}/eval", 2,
     "{mask_small}: mask of 4 x 5 x 6 voxels is not on the grid of {scan} (37 x 45 x 29)", []),
    ("evaluate --manifest={mask_5} --out_dir={out}/eval", 2,
     '{mask_5}: entry 0: "mask" must be the path of a NIfTI file', []),
    ("evaluate --manifest={mask_gone} --out_dir={out}/eval", 2, "{absent}: mask of scan is missing",
     []),
    # a data set that would mix or lose subjects, or could not be trained on
    ("prepare --src={root}/a --out={prepared}", 2,
     "{prepared}/manifest.json: exists already; pass --replace to replace, or choose another "
     "--out",
     ["{prepared}/manifest.json"]),
    (SMOKE + " --dataset={two_splits} --workdir={out}/run", 2,
     "{two_splits}: subject scan is in both the validation and the train split (entry 1); *", []),
    (SMOKE + " --dataset={tiny_train} --workdir={out}/run", 2,
     "{tiny}: volume of 3 x 3 x 3 voxels is too small (every edge must be at least 7 voxels)",
     []),
    (SMOKE + " --dataset={good} --workdir={out}/run --patch_size=48", 2,
     "--patch_size 48 is larger than every training volume (the first: {other}); *", []),
    (SMOKE + " --dataset={good} --workdir={out}/run --parallel_volumes=1000000", 2,
     "{good}: training patches need about * GiB (--parallel_volumes 1000000 visits of a "
     "37 x 45 x 29 volume, *), more than the * GiB of memory available; lower those flags", []),
    (SMOKE + " --dataset={good} --workdir={out}/run --cache_dir={scan}", 2,
     "{scan}: the disk cache's folder is a file; *", []),
    (SMOKE + " --dataset={good} --workdir={out}/run --model=b2u4 --init_generator={corrupted}", 2,
     "{corrupted}.weights.h5: SHA-256 * model card *", []),
    # weights that cannot be trusted, settings that score nothing, a header without units
    ("predict {scan} {out}/sr.nii.gz --weights {unchecked}", 2,
     "{unchecked}.json: model card records no SHA-256 of its weights, * --unverified_weights *",
     ["{out}/sr.nii.gz"]),
    ("evaluate --volumes={scan} --baselines= --out_dir={out}/eval", 2,
     "nothing to score: give --baselines (of *) or --weights NAME=PATH", []),
    # headers nibabel refuses (it would print its own lines beside ours)
    ("predict {no_datatype} {out}/sr.nii.gz", 2,
     "{no_datatype}: cannot read NIfTI (data code 0 not supported)", []),
    ("evaluate --volumes={bad_intercept} --out_dir={out}/eval", 2,
     "{bad_intercept}: cannot read NIfTI (Valid slope but invalid intercept inf)", []),
    ("predict {bad_units} {out}/sr.nii.gz --target_voxel=0.5", 2,
     "{bad_units}: header's spatial unit (xyzt_units code 5) is none of metre, mm or micron; *",
     []),
    ("models critic --patch_size=17", 2,
     "--patch_size 17: patch_size must be a positive multiple of 16, got 17", []),
    # a release that would overwrite the package or report a subject it trained on
    ("release --weights={shipped}", 2, "give --out DIR (a folder for the released weights) or "
     "--replace_shipped (over the package's own), one of them", []),
    ("release --weights={shipped} --dataset={seen_test} --out={out}/released", 2,
     "{scan}: test volume pydeface_mean_head is in the validation split of *", []),
]


# the rows whose fault shows only once a network or a pipeline runs (NaN weights, a NaN
# training volume) or a network is built (the critic's patch)
LOADS_TENSORFLOW = {
    "predict {scan} {out}/sr.nii.gz --weights {nan_weights}",
    "evaluate --volumes={scan} --weights=net={nan_weights} --out_dir={out}/eval",
    "release --weights={nan_weights} --dataset={seen_test} --out={out}/released",
    SMOKE + " --dataset={nan_train} --workdir={out}/run",
    "models critic --patch_size=17"}

@pytest.fixture(scope="module")
def world(tmp_path_factory, colin27_crop, bids_tree):
  """(root, {name: path}) of everything the cases refer to (bad_input_world.py)."""
  root = tmp_path_factory.mktemp("world")
  return root, build_world(root, colin27_crop, bids_tree)


@pytest.mark.parametrize("command, status, message, kept", CASES,
                         ids=[case[0] for case in CASES])
def test_bad_input_is_one_error_line_and_changes_nothing(world, tmp_path_factory, command,
                                                         status, message, kept):
  root, paths = world
  paths = {**paths, "out": str(tmp_path_factory.mktemp("out"))}
  kept = [path.format(**paths) for path in kept]
  before = tree_state(root), tree_state(paths["out"]), [state(path) for path in kept]
  tool, *args = words(command, paths)
  returned, lines, _, loaded = run_in_subprocess(tool, args)
  assert_refused(returned, lines, message, paths)
  assert returned == status
  assert loaded == (command in LOADS_TENSORFLOW), f"TensorFlow loaded: {loaded}"
  assert (tree_state(root), tree_state(paths["out"]), [state(path) for path in kept]) == before
