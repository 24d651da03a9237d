"""`mdcsrn-sr` (python -m mdcsrn_tf.infer): super-resolve NIfTI scans with a trained generator.

  mdcsrn-sr INPUT.nii.gz OUTPUT.nii.gz [--weights PATH] [--model b4u4] [--tile 64] [--margin 3]
  mdcsrn-sr A.nii.gz B.nii.gz ... --out_dir DIR      (each to DIR/<name>_sr.nii.gz)
  mdcsrn-sr FOLDER --out_dir DIR                     (every .nii / .nii.gz in FOLDER, hidden
                                                      ones skipped)
  mdcsrn-sr LOWRES.nii.gz SR.nii.gz --scale 2,2,1    (or --target_voxel 0.7)

Without --scale or --target_voxel the input is taken to be on the HR grid already (as the
network's training input: the LR scan interpolated back). The output keeps the input's
intensity range and geometry, is written atomically, and never replaces an input.
"""
from mdcsrn_tf import cli
from mdcsrn_tf.infer.predict import PredictOptions, super_resolve_files


def main(options: PredictOptions, arguments):
  for output in super_resolve_files(options, arguments):
    print(output)


def run():
  cli.run(main, PredictOptions, __doc__)


if __name__ == "__main__":
  run()
