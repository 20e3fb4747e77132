"""Config of ``launch.train``: surrogate-gradient training (SNASNet recipe).

Give ``genotype`` ('0303/0030/2002/0200', or per-cell genotypes joined with
'|') or ``from_search`` (a ``launch.search`` workdir: its genotype, its
network section and its dataset for every field not overridden on the command
line; a search on the bundled ``cifar10_sample`` trains on it, a smoke test).

Presets: ``small`` (default; width 16) and ``reference`` (CIFAR-10 network of
the paper: width 256, ``second_pool`` 4, the cosine stepped per epoch).
"""

from __future__ import annotations

from ml_collections import config_dict

from snnax_nas.configs import sections

PRESETS = {"reference": {"training.per_epoch_schedule": True}}  # added to sections.REFERENCE


# Event binning of dvs128_gesture: frames per sample and their side in pixels.
DVS_DEFAULTS = dict(frames=16, size=32)


def get_config(preset: str | None = None) -> config_dict.ConfigDict:
  """The training config of ``preset`` (``small`` when None)."""
  c = config_dict.ConfigDict()
  c.genotype = config_dict.placeholder(str)
  c.from_search = config_dict.placeholder(str)
  # cifar10, cifar100, tinyimagenet, dvs128_gesture, npz:PATH ('{split}' ->
  # train/test) or folder:PATH.
  c.dataset = "cifar10"
  c.data_dir = config_dict.placeholder(str)
  c.seed = 0  # weights, data order, dropout and augmentation
  c.network = sections.network()  # feedback edges need network.backward
  c.training = config_dict.ConfigDict(dict(
      batch_size=64,              # global; a multiple of the device count
      epochs=300,
      lr=0.1,                     # cosine decay to 1% of it
      momentum=0.9,
      weight_decay=5e-4,          # applied as decay (snnax_nas.train.make_optimizer)
      per_epoch_schedule=False,   # step the cosine once per epoch, as the reference
      loss="ce",                  # ce (SNASNet) or mse to one-hot (LightSNN DVS)
      augment=True,               # random crop + flip
      eval_every=1,               # epochs between test evaluations (and the last)
      max_train_examples=config_dict.placeholder(int),
      max_test_examples=config_dict.placeholder(int),
      keep_checkpoints=3,
      # 32: float training; 16, 8 or 4: quantisation-aware training (the
      # forward fake-quantises every kernel per output channel, STE gradient).
      weight_bits=32,
      log_every=50))              # progress line every N steps (0: per epoch)
  c.dvs = config_dict.ConfigDict(DVS_DEFAULTS)  # dvs128_gesture only (else refused)
  return sections.apply_preset(c, preset, PRESETS)
