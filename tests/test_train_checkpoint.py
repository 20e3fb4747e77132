"""snnax_nas.train.checkpoint: a checkpoint saved on 2 devices restores on any
device count."""

from __future__ import annotations

import textwrap

import pytest
from train_helpers import run_script

_SAVE = textwrap.dedent("""
    import sys
    import jax, numpy as np
    from snnax_nas import train
    from train_helpers import CFG1, G
    assert jax.device_count() == 2, jax.devices()
    opt = train.make_optimizer(0.1, 2, 3)
    mesh = train.make_mesh()
    state = train.create_train_state(jax.random.PRNGKey(7), CFG1, G, opt)
    state = jax.device_put(state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    ckpt = train.Checkpointer(sys.argv[1] + "/checkpoints")
    ckpt.save(1, state, {"history": [{"epoch": 1}], "fingerprint": {"seed": 7}})
    ckpt.close()
    np.savez(sys.argv[1] + "/leaves.npz", *[np.asarray(x) for x in jax.tree.leaves(state)])
    print("SAVED")
""")

_RESTORE = textwrap.dedent("""
    import sys
    import jax, numpy as np
    import orbax.checkpoint as ocp
    from snnax_nas import train
    from train_helpers import CFG1, G
    work, n = sys.argv[1], int(sys.argv[2])
    assert jax.device_count() == n, jax.devices()
    expect = np.load(work + "/leaves.npz")
    expect = [expect[f"arr_{i}"] for i in range(len(expect.files))]
    if n < 2:  # the saved devices are missing: the failure restore_checkpoint avoids
      manager = ocp.CheckpointManager(work + "/checkpoints", item_handlers={
          "state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()})
      try:
        manager.restore(1)
        raise SystemExit("a plain restore should fail across topologies")
      except ValueError as e:
        assert "Topology" in str(e), e
    # The documented template: the run's optimiser structure, any key.
    opt = train.make_optimizer(0.1, 2, 3)
    template = train.create_train_state(jax.random.PRNGKey(0), CFG1, G, opt)
    state, meta = train.restore_checkpoint(work, template)
    assert isinstance(state, train.TrainState)
    assert meta["history"] == [{"epoch": 1}] and meta["fingerprint"] == {"seed": 7}
    leaves = jax.tree.leaves(state)
    assert len(leaves) == len(expect)
    for a, b in zip(leaves, expect):
      assert a.sharding.is_fully_addressable and len(a.sharding.device_set) == 1
      np.testing.assert_array_equal(np.asarray(a), b)
    # Without a template: nested dicts, enough for inference.
    raw, _ = train.restore_checkpoint(work + "/checkpoints", epoch=1)
    for a, b in zip(jax.tree.leaves(raw["params"]), jax.tree.leaves(state.params)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    try:
      train.restore_checkpoint(work, template, epoch=5)
      raise SystemExit("epoch 5 does not exist")
    except FileNotFoundError as e:
      assert "epoch 5" in str(e) and "[1]" in str(e), e
    print("RESTORED")
""")


@pytest.mark.slow
def test_restore_checkpoint_of_two_devices_on_any_device_count(tmp_path, env):
  out = run_script(_SAVE, env, 2, tmp_path)
  assert out.returncode == 0, out.stderr[-3000:]
  for n in (1, 3):
    out = run_script(_RESTORE, env, n, tmp_path, n)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RESTORED" in out.stdout


# Orbax leaves failed reads' asyncio tasks behind, which print at interpreter
# exit and once raced pytest's import machinery: the faults run in their own
# process.
_CORRUPT = textwrap.dedent("""
    import glob, os, sys
    import jax, numpy as np
    from snnax_nas import train
    from train_helpers import CFG1, G

    def truncate(epoch_dir):  # empties every data file: a disk-truncated checkpoint
      files = [f for f in glob.glob(epoch_dir + "/state/**/d/*", recursive=True)
               if os.path.isfile(f)]
      assert files, epoch_dir
      for f in files:
        open(f, "w").close()

    work = sys.argv[1]
    opt = train.make_optimizer(0.1, 2, 3)
    state = train.create_train_state(jax.random.PRNGKey(7), CFG1, G, opt)
    ckpt = train.Checkpointer(work + "/checkpoints")
    for epoch in (1, 2):
      ckpt.save(epoch, state.replace(epoch=epoch),
                {"history": [{"epoch": e} for e in range(1, epoch + 1)]})
    ckpt.close()
    truncate(work + "/checkpoints/2")
    got, meta = train.restore_checkpoint(work, state)
    assert meta["history"][-1]["epoch"] == 1 and int(got.epoch) == 1
    try:
      train.restore_checkpoint(work, state, epoch=2)
      raise SystemExit("a truncated epoch asked for by number must fail")
    except train.CorruptCheckpointError as e:
      assert "epoch 2" in str(e) and "truncated or corrupt" in str(e), e
    # Resuming moves the unreadable epoch aside, so it can be trained and saved again.
    ckpt = train.Checkpointer(work + "/checkpoints")
    epoch, got, meta = ckpt.restore_latest(state)
    assert epoch == 1 and os.path.isdir(work + "/checkpoints/corrupt.2")
    ckpt.save(2, state.replace(epoch=2), {"history": [{"epoch": 1}, {"epoch": 2}]})
    ckpt.close()
    assert int(train.restore_checkpoint(work, state)[0].epoch) == 2
    for epoch in (1, 2):
      truncate(work + "/checkpoints/" + str(epoch))
    try:
      train.restore_checkpoint(work, state)
      raise SystemExit("every checkpoint truncated must fail")
    except train.CorruptCheckpointError as e:
      assert "epoch 1" in str(e) and len(str(e).splitlines()) == 1, e
    print("FAULTS HANDLED", flush=True)
""")


@pytest.mark.slow
def test_corrupt_checkpoints_fall_back_and_name_the_folder(tmp_path, env):
  """Fault injection: a truncated latest checkpoint is passed over for the one
  before it (restore and resume); a truncated one asked for by number, or
  every one truncated, is one CorruptCheckpointError line."""
  out = run_script(_CORRUPT, env, 1, tmp_path)
  assert "FAULTS HANDLED" in out.stdout, out.stderr[-3000:]
