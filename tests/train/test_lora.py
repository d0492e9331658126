"""LoRA layer math: PEFT's init, scaling (plain and rsLoRA), Conv1D transpose, merge."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from instructkit.train.lora import LoraLayer


def test_fresh_adapter_is_a_no_op_and_a_is_kaiming_uniform():
    torch.manual_seed(0)
    base = nn.Linear(64, 32)
    layer = LoraLayer(base, r=8, alpha=16)
    x = torch.randn(5, 64)
    assert torch.equal(layer(x), base(x))
    assert torch.count_nonzero(layer.lora_B.weight) == 0
    bound = 1 / math.sqrt(64)  # kaiming_uniform(a=sqrt(5)) bound = 1/sqrt(fan_in), as nn.Linear
    assert layer.lora_A.weight.abs().max() <= bound
    assert layer.lora_A.weight.abs().max() > 0.8 * bound  # spread over the range, not a tiny init


@pytest.mark.parametrize("rslora,expected", [(False, 16 / 4), (True, 16 / 2)])
def test_scaling(rslora, expected):
    layer = LoraLayer(nn.Linear(8, 8), r=4, alpha=16, use_rslora=rslora)
    assert layer.scaling == expected


def test_base_frozen_lora_trainable():
    layer = LoraLayer(nn.Linear(8, 6), r=2, alpha=4)
    trainable = {n for n, p in layer.named_parameters() if p.requires_grad}
    assert trainable == {"lora_A.weight", "lora_B.weight"}


def _perturbed(layer: LoraLayer) -> LoraLayer:
    with torch.no_grad():
        layer.lora_B.weight.normal_(0, 0.5)
    return layer


def test_linear_forward_matches_explicit_formula():
    torch.manual_seed(1)
    base = nn.Linear(10, 7)
    layer = _perturbed(LoraLayer(base, r=3, alpha=6))
    x = torch.randn(4, 10)
    a, b = layer.lora_A.weight, layer.lora_B.weight
    expected = x @ base.weight.T + base.bias + (x @ a.T @ b.T) * (6 / 3)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_conv1d_forward_and_merge_use_the_transposed_layout():
    torch.manual_seed(2)
    conv = Conv1D(nf=7, nx=10)  # GPT-2 layout: weight (in=10, out=7)
    nn.init.normal_(conv.weight, std=0.2)
    layer = _perturbed(LoraLayer(conv, r=3, alpha=3))
    assert (layer.in_features, layer.out_features) == (10, 7)
    x = torch.randn(2, 5, 10)
    a, b = layer.lora_A.weight, layer.lora_B.weight
    expected = x @ conv.weight + conv.bias + x @ a.T @ b.T
    before = layer(x)
    torch.testing.assert_close(before, expected, rtol=1e-5, atol=1e-6)
    merged = layer.merged_base_layer()
    assert isinstance(merged, Conv1D)
    torch.testing.assert_close(merged(x), before, rtol=1e-5, atol=1e-5)


def test_dropout_applies_only_to_the_lora_path():
    torch.manual_seed(3)
    base = nn.Linear(16, 16)
    layer = _perturbed(LoraLayer(base, r=4, alpha=4, dropout=0.5))
    x = torch.randn(3, 16)
    layer.eval()
    y_eval = layer(x)
    layer.train()
    y_train = layer(x)
    assert not torch.allclose(y_eval, y_train)
    layer.lora_B.weight.data.zero_()
    torch.testing.assert_close(layer(x), base(x))  # base output itself is never dropped


def test_rank_must_be_positive():
    with pytest.raises(ValueError):
        LoraLayer(nn.Linear(4, 4), r=0, alpha=1)
