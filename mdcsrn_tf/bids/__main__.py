"""`mdcsrn-bids` (python -m mdcsrn_tf.bids): a BIDS App that super-resolves the T1w images of
a BIDS dataset into a BIDS derivatives dataset, with a QC report per participant.

  mdcsrn-bids BIDS_DIR OUTPUT_DIR participant [--participant_label 01 02 ...]
              [--session_label a ...] [--weights PATH] [--scale 1,1,2 | --target_voxel 0.7]

OUTPUT_DIR/sub-<label>[/ses-<label>]/anat/<source name>_desc-mdcsrn_T1w.nii.gz with a JSON
sidecar (source, weights and their checksum, acquisition, grid change, command), and
OUTPUT_DIR/sub-<label>.html. Participants already done are skipped; participants are
independent, so a job array can run one per job into the same OUTPUT_DIR (docs/serving.md).
"""
import sys

from mdcsrn_tf import cli
from mdcsrn_tf.bids.app import BidsOptions, run_app

LIST_FLAGS = ("--participant_label", "--session_label")


def joined_lists(argv) -> list:
  """argv with `--participant_label 01 02` (the BIDS Apps' form: values up to the next
  flag) joined into `--participant_label=01,02`, the form the flag parser reads; the three
  positional arguments come before these flags or after another flag's value."""
  result, index = [], 0
  while index < len(argv):
    argument = argv[index]
    if argument in LIST_FLAGS:
      values = []
      while index + 1 < len(argv) and not argv[index + 1].startswith("-"):
        index += 1
        values.append(argv[index])
      result.append(f"{argument}={','.join(values)}")
    else:
      result.append(argument)
    index += 1
  return result


def main(options: BidsOptions, arguments):
  run_app(options, arguments)


def run():
  cli.run(main, BidsOptions, __doc__, joined_lists(sys.argv))


if __name__ == "__main__":
  run()
