"""Whether a volume is one a generator trained or validated on, as its model card records
them: by name, and by file identity (identity.py), the same resolved path or the same
bytes, so that a training volume listed again under another name, or copied to another
path, is never scored as held out.

Training records, beside the names of the card's `subjects` ({split: [names]}), each
volume's resolved path, size and SHA-256 under `subjects["files"]` ({split: [{name, path,
size, sha256}]}: `volume_records`). Cards written before that hold names only: their
volumes are then found by name in the data set manifest the card names (`dataset`), when
it can still be read, and compared by path and content as they are now.
"""
import os
import typing

from mdcsrn_tf import identity
from mdcsrn_tf.data import manifest
from mdcsrn_tf.errors import InputError

SPLITS = ("train", "validation")
FILES = "files"  # the key of card.subjects that holds the volumes' identities


class Seen(typing.NamedTuple):
  """A volume found among a card's training or validation volumes: the split, the name the
  card gives it, and why (`how`: by name, the same file, the same bytes)."""
  split: str
  name: str
  how: str

  def detail(self, scored_name) -> str:
    """What the match is, for a message about `scored_name`."""
    return self.how if self.name == scored_name else f"as {self.name}: {self.how}"


def volume_records(names, entries) -> list:
  """[{name, path, size, sha256}] of manifest entries under their unique `names`: what a
  model card keeps of the volumes of one split (each file hashed once per process)."""
  return [{"name": name, "path": identity.resolved(entry["path"]),
           "size": os.path.getsize(entry["path"]),
           "sha256": identity.content_sha256(entry["path"])}
          for name, entry in zip(names, entries)]


class TrainingVolumes:
  """The training and validation volumes a model card records, read once: `find` says
  whether a volume is one of them."""

  def __init__(self, card):
    self._names = {split: set(card.subjects.get(split, ())) for split in SPLITS}
    recorded = card.subjects.get(FILES)
    if isinstance(recorded, dict):
      self._records = {split: list(recorded.get(split, ())) for split in SPLITS}
      return
    try:  # a card from before the records: its volumes as its data set lists them now
      entries = manifest.read(card.dataset) if card.dataset else {}
    except InputError:  # moved, edited or deleted since: the names are all there is
      entries = {}
    self._records = {split: [{"name": e["name"], "path": e["path"]}
                             for e in entries.get(split, ())
                             if {e["name"], e["subject"]} & self._names[split]]
                     for split in SPLITS}

  def find(self, path, names) -> Seen | None:
    """Where the volume at `path`, known by `names` (a manifest entry's name and subject),
    is among them: the same file or bytes first, else the same name; None when it is not."""
    for split, records in self._records.items():
      for record in records:
        how = _same_file(path, record)
        if how:
          return Seen(split, record["name"], how)
    for split in SPLITS:
      for name in sorted({name for name in names if name} & self._names[split]):
        return Seen(split, name, "by name")
    return None


def _same_file(path, record) -> str:
  """Why the file at `path` is the recorded one ("" when it is not): the same resolved
  path, or the same bytes (a record's size and SHA-256, or the file it names)."""
  recorded = record.get("path")
  at_path = isinstance(recorded, str) and os.path.isabs(recorded)  # not a shipped card's
  if at_path and identity.resolved(path) == identity.resolved(recorded):
    return identity.one_path(identity.resolved(path))
  if record.get("sha256"):  # the digest training recorded: the file is not read again
    same = (record.get("size") == identity.size(path)
            and identity.content_sha256(path) == record["sha256"])
    return identity.same_bytes(record["sha256"]) if same else ""
  return identity.same_content(path, recorded) if at_path and os.path.isfile(recorded) else ""


def among(card, subjects) -> list:
  """[(subject, Seen)] of the `subjects` (evaluate/subjects.Subject: `path`, `name`,
  `aliases`) that are among the card's training or validation volumes."""
  volumes = TrainingVolumes(card)
  found = [(subject, volumes.find(subject.path, (subject.name, *subject.aliases)))
           for subject in subjects]
  return [(subject, match) for subject, match in found if match]
