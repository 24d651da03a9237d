"""`mdcsrn-sr` (python -m mdcsrn_tf.infer): super-resolve NIfTI scans with a trained generator.

  mdcsrn-sr INPUT.nii.gz OUTPUT.nii.gz [--weights PATH] [--model b4u4] [--tile 64] [--margin 3]
  mdcsrn-sr A.nii.gz B.nii.gz ... --out_dir DIR      (each to DIR/<name>_sr.nii.gz)
  mdcsrn-sr FOLDER --out_dir DIR [--recursive]       (every .nii / .nii.gz in FOLDER, and in
                                                      its subfolders with --recursive; hidden
                                                      ones skipped)
  mdcsrn-sr '/data/HCP/*/T1w/T1w_acpc_dc_restore.nii.gz' --out_dir DIR
                                                     (a quoted glob pattern: DIR/100206_sr...)
  mdcsrn-sr LOWRES.nii.gz SR.nii.gz --scale 2,2,1    (or --target_voxel 0.7)

Without --scale or --target_voxel the input is taken to be on the HR grid already (as the
network's training input: the LR scan interpolated back). The output keeps the input's
intensity range and geometry, is written atomically, and never replaces an input; a file
that exists already at an output's path is replaced only with --overwrite. Beside each
output goes its JSON sidecar, OUTPUT.json (BIDS-style: the input's path and SHA-256, the
weights and their SHA-256, the acquisition, the settings, the command and the input's
training-domain warnings). With --out_dir
(made when missing) each output is named by the first part of the input paths that differs
(HCP: the subject folder; a line says so when that is not the file's own name), or mirrors
the inputs' folders with --out_layout mirror.
"""
from mdcsrn_tf import cli
from mdcsrn_tf.errors import one_line
from mdcsrn_tf.infer.predict import PredictOptions, super_resolve_files


def main(options: PredictOptions, arguments):
  for output in super_resolve_files(options, arguments):
    print(one_line(output))


def run():
  cli.run(main, PredictOptions, __doc__)


if __name__ == "__main__":
  run()
