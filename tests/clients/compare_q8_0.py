"""Our Q8_0 rewrite of a GGUF file against llama.cpp's own requantization of the same file.
Usage: compare_q8_0.py ORIGINAL OURS SCRATCH_DIR. Every tensor must have the same type and bytes."""
import ctypes
import os
import sys

import llama_cpp
from gguf import GGUFReader

original, ours, scratch = sys.argv[1:4]
theirs = os.path.join(scratch, "llama-cpp.Q8_0.gguf")
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
params.allow_requantize = True
params.nthread = 1
# llama.cpp logs every tensor to stderr; keep the test output readable.
devnull = os.open(os.devnull, os.O_WRONLY)
saved = os.dup(2)
os.dup2(devnull, 2)
try:
    status = llama_cpp.llama_model_quantize(original.encode(), theirs.encode(), ctypes.byref(params))
finally:
    os.dup2(saved, 2)
if status != 0:
    print(f"FAIL llama.cpp could not requantize: {status}")
    sys.exit(1)

a = {t.name: t for t in GGUFReader(ours).tensors}
b = {t.name: t for t in GGUFReader(theirs).tensors}
if sorted(a) != sorted(b):
    print(f"FAIL tensor names differ: {sorted(set(a) ^ set(b))}")
    sys.exit(1)
for name, tensor in a.items():
    other = b[name]
    if tensor.tensor_type != other.tensor_type or list(tensor.shape) != list(other.shape):
        print(f"FAIL {name}: {tensor.tensor_type} {list(tensor.shape)} vs {other.tensor_type} {list(other.shape)}")
        sys.exit(1)
    if tensor.data.tobytes() != other.data.tobytes():
        print(f"FAIL {name}: data differs")
        sys.exit(1)
print(f"ok   {len(a)} tensors identical to llama.cpp's Q8_0")
print("passed")
