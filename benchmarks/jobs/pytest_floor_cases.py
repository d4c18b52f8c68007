"""The five tests of ``pytest_plugin_cases.py`` without a process group: one tensor op each, in the pytest
process (``benchmarks/pytest_plugin.py``). What any pytest file that imports torch costs: the floor of the others.
"""

import torch


def _one_op():
    t = torch.ones(1)
    assert t.item() == 1


def test_one_op_0():
    _one_op()


def test_one_op_1():
    _one_op()


def test_one_op_2():
    _one_op()


def test_one_op_3():
    _one_op()


def test_one_op_4():
    _one_op()
