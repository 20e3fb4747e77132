import re

import pytest

from snnax_nas import ops


def test_presets_and_reference_digits():
  s = ops.op_set("snasnet")
  assert s.names == ("zero", "skip", "conv1x1", "conv3x3", "avgpool3x3")
  assert [s.digit(n) for n in s.names] == [0, 1, 2, 3, 4]
  assert s.forward_digits == (0, 1, 2, 3, 4)
  sp = ops.op_set("spikenas")
  assert not sp.has_zero and sp.forward_digits == (1, 2)
  assert sp.op_of_digit(2).name == "conv3x3" and sp.op_of_digit(0).kind == "zero"
  assert ops.op_set("lightsnn").digit("conv3x3") == 2
  assert ops.op_set("spikenas3").names == ("skip", "conv3x3", "avgpool3x3")


def test_threshold_ops_and_lif_groups():
  s = ops.op_set("zero,skip,conv3x3@0.5,conv1x1,conv3x3")
  assert s.op_of_digit(2).threshold == 0.5
  assert s.lif_thresholds == (0.5, None)
  assert ops.parse_op("conv1x1@0.25").name == "conv1x1@0.25"


@pytest.mark.parametrize("spec, bad", [
    ("skip,conv5x5", "conv5x5"), ("nosuchpreset", "nosuchpreset"),
    ("skip,skip", "skip"), ("zero", "zero"), ("avgpool3x3@0.5", "avgpool3x3@0.5"),
    ("conv3x3@abc", "abc"), ("conv3x3@-1", "-1")])
def test_bad_op_sets_name_the_value(spec, bad):
  with pytest.raises(ValueError, match=re.escape(bad)):
    ops.op_set(spec)


def test_digit_out_of_range():
  with pytest.raises(ValueError, match="digit 3"):
    ops.op_set("spikenas").op_of_digit(3)
