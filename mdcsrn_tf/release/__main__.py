"""`python -m mdcsrn_tf.release --weights=runs/release_l1 --kind=l1` (mdcsrn-release): ships
a trained generator as the package's b4u4 weights, with its held-out metrics in its model
card (docs/reproducing.md), and prints them: the whole volume's, and beside them those inside
the test subject's mask when it has one."""
from mdcsrn_tf import cli, weights
from mdcsrn_tf.errors import InputError
from mdcsrn_tf.evaluate import scoring
from mdcsrn_tf.release import ReleaseOptions, release


def main(options: ReleaseOptions, arguments):
  if arguments:
    raise InputError(f"unexpected arguments: {' '.join(arguments)}")
  path = release(options)
  card = weights.read_card(path)
  print(scoring.format_table(scoring.summarise({card.held_out["volume"]:
                                                card.held_out["whole_volume"]}),
                             mask_label=f"inside {card.held_out['mask']}"))
  print(f"shipped {path}{weights.WEIGHTS_SUFFIX}")
  if card.warning:
    print(f"warning: {card.warning}")


def run():
  cli.run(main, ReleaseOptions, __doc__)


if __name__ == "__main__":
  run()
