"""`python -m mdcsrn_tf.release --weights=runs/cpu/b1u8 --kind=l1 --out=DIR` (mdcsrn-release):
scores a trained generator on the held-out test split and, when it clears the project's
bar (or with --below_bar, its misses recorded as the card's warning), writes it as
DIR/MODEL_KIND (b1u8_l1, ..., b4u4_gan) with its held-out metrics in its model card
(docs/reproducing.md; `--replace_shipped` instead of --out: over the package's own
weights, keeping a backup), and prints them: the whole volume's, and beside them those
inside the test subject's mask when it has one."""
from mdcsrn_tf import cli, weights
from mdcsrn_tf.errors import InputError, one_line
from mdcsrn_tf.evaluate import scoring
from mdcsrn_tf.release import ReleaseOptions, release


def main(options: ReleaseOptions, arguments):
  if arguments:
    raise InputError(f"unexpected arguments: {' '.join(arguments)}")
  path = release(options, log=lambda line: print(one_line(line)))
  card = weights.read_card(path)
  print(scoring.format_table(scoring.summarise(card.held_out["per_volume"]),
                             mask_label="inside the masks"))
  print(one_line(f"wrote {path}{weights.WEIGHTS_SUFFIX}"))


def run():
  cli.run(main, ReleaseOptions, __doc__)


if __name__ == "__main__":
  run()
