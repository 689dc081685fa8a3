#!/usr/bin/env python3
"""Exports torchvision models with random weights to ONNX test folders (ONNX's backend layout).

usage: /usr/bin/python3 make_torchvision_models.py OUTDIR
Needs Debian's python3-torch, python3-torchvision and python3-onnx. Writes OUTDIR/<name>/model.onnx and
OUTDIR/<name>/test_data_set_0/input_0.pb; the expected output_0.pb is written by ort_expected.mjs with
ONNX Runtime, so the engine is checked against ONNX Runtime rather than against PyTorch.
"""
import os
import sys

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper

MODELS = {
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None),
    "resnet18": lambda: torchvision.models.resnet18(weights=None),
    "squeezenet1_1": lambda: torchvision.models.squeezenet1_1(weights=None),
}


def main(out):
    for name, make in MODELS.items():
        torch.manual_seed(1234)
        model = make().eval()
        folder = os.path.join(out, name)
        os.makedirs(os.path.join(folder, "test_data_set_0"), exist_ok=True)
        x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(42))
        path = os.path.join(folder, "model.onnx")
        torch.onnx.export(model, x, path, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=13,
                          do_constant_folding=True)
        onnx.checker.check_model(onnx.load(path))
        t = numpy_helper.from_array(x.numpy().astype(np.float32), "input")
        with open(os.path.join(folder, "test_data_set_0", "input_0.pb"), "wb") as f:
            f.write(t.SerializeToString())
        print(name, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
