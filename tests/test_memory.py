"""Huge-page advice for large CPU tensors: taken where the kernel offers it, harmless everywhere."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from recsys_rbm.train.memory import SMALLEST, prefer_huge_pages

THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def test_small_tensors_are_left_alone():
    assert prefer_huge_pages(torch.empty(1000)) is False


def test_a_large_tensor_is_marked_where_linux_offers_huge_pages_and_keeps_its_values():
    tensor = torch.empty(2 * SMALLEST // 4)
    marked = prefer_huge_pages(tensor)
    offered = sys.platform.startswith("linux") and THP_SETTING.exists() and "[never]" not in THP_SETTING.read_text()
    assert marked == offered
    tensor.fill_(3.0)
    assert float(tensor.sum()) == 3.0 * tensor.numel()
