"""snnax_nas.train.metrics: firing rates from the forward's probes, silent
layers, metrics files and plots."""

from __future__ import annotations

import csv
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_helpers import CFG1
from train_helpers import G4
from train_helpers import INFO
from train_helpers import separable

from snnax_nas import data as data_lib
from snnax_nas import network
from snnax_nas import train


@pytest.mark.slow
def test_firing_rates_reads_the_forward_probes():
  """``firing_rates(aux["probes"])`` of a spike-probed forward: the same
  rates as from its ``values``, per layer and (per_layer=False) summed."""
  params = network.init_standalone_params(jax.random.PRNGKey(0), CFG1, G4)
  x = jnp.asarray(data_lib.normalize(separable(4)[0], INFO))
  key = jax.random.PRNGKey(1)  # dropout
  _, aux = network.standalone_forward(params, G4, x, key, CFG1, train=True,
                                      probe=train.spike_probe(), per_layer=True)
  sar, rates = train.firing_rates(aux["probes"])
  assert (sar, rates) == train.firing_rates(aux["probes"]["values"])
  assert set(rates) == set(aux["probes"]["values"]) and "head/fc_lif" in rates
  assert all(0 <= r <= 1 for r in rates.values()) and 0 < sar < 1
  # Summed over batches on the host, as the training loop does.
  summed = train.sum_metrics([aux["probes"], aux["probes"]])
  assert train.firing_rates(summed) == pytest.approx((sar, rates))
  _, aux_all = network.standalone_forward(params, G4, x, key, CFG1, train=True,
                                          probe=train.spike_probe(), per_layer=False)
  sar_all, rates_all = train.firing_rates(aux_all["probes"])
  assert sar_all == pytest.approx(sar, rel=1e-6) and list(rates_all) == ["all"]
  # A probe that is not a spike probe: a clear error, not KeyError.
  with pytest.raises(ValueError, match="spike_probe"):
    train.firing_rates({"values": {"a": 1.0}, "counts": {"a": 1.0}})


def test_silent_layers_and_message():
  rates = {"cell0/edge3/lif": 0.1, "head/lif": 0.0, "head/fc_lif": 0.0, "x": float("nan")}
  assert train.silent_layers(rates) == ["head/lif", "head/fc_lif"]
  msg = train.silent_layers_message(["head/fc_lif"])
  assert "head/fc_lif" in msg and "--config.network.linear_init=fan_in" in msg
  assert "threshold" in msg and "width" in msg


def _history():
  rates = {"cell0/edge3/lif": 0.12, "head/fc_lif": 0.0}
  return [{"epoch": e, "train_loss": 0.7 / e, "train_accuracy": 0.5 + 0.1 * e,
           "train_sar": 0.1, "train_rates": dict(rates, **{"head/fc_lif": 0.01 * (e - 1)}),
           "test_loss": 0.6, "test_accuracy": 0.6, "sar": 0.1,
           "rates": {"head/fc_lif": 0.02}} for e in (1, 2, 3)]


def test_metrics_writer_files_and_plots(tmp_path):
  hist = _history()
  w = train.MetricsWriter(str(tmp_path), plot_title="t")
  w.write(hist)
  w.close()
  with open(tmp_path / "metrics.jsonl") as f:
    assert [json.loads(line)["epoch"] for line in f] == [1, 2, 3]
  with open(tmp_path / "metrics.csv") as f:
    rows = list(csv.DictReader(f))
  assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
  assert "rate/head/fc_lif" in rows[0] and "train_rates" not in rows[0]
  for name in ("accuracy.png", "firing_rates.png"):
    assert os.path.getsize(tmp_path / name) > 0
  assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]
  # A history without train_rates (an old checkpoint's) draws no rate plot.
  old = [{k: v for k, v in e.items() if k != "train_rates"} for e in hist]
  assert not train.plot_firing_rates(old, str(tmp_path / "none.png"))
  assert not os.path.exists(tmp_path / "none.png")


def test_sum_metrics_is_float64_exact():
  trees = [{"a": np.float32(2.0 ** 24), "b": {"c": np.float32(1.0)}}] * 3
  assert train.sum_metrics(trees) == {"a": 3 * 2.0 ** 24, "b": {"c": 3.0}}
