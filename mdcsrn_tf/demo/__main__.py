"""`python -m mdcsrn_tf.demo --out demo_out [--crop 96]` (mdcsrn-demo): the README's demo on
the held-out Colin27 brain (demo/__init__.py says what it writes)."""
from mdcsrn_tf import cli
from mdcsrn_tf.demo import DemoOptions, run_demo
from mdcsrn_tf.errors import InputError


def main(options: DemoOptions, arguments):
  if arguments:
    raise InputError(f"unexpected arguments: {' '.join(arguments)}")
  run_demo(options)


def run():
  cli.run(main, DemoOptions, __doc__)


if __name__ == "__main__":
  run()
