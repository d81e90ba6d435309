"""Runs llama-cpp-python's OpenAI-compatible server (same arguments as `python -m llama_cpp.server`) with
llama.cpp's weight repacking ("extra buffer types": AMX, CPU repack) turned off.

Why: on a Sapphire Rapids CPU inside a Firecracker VM, which advertises AMX, the first decode with repacked
weights segfaults (llama-cpp-python 0.3.36, measured 2026-12-02). Without repacking the 1.5B model runs as
fast on 2 cores (prompt ~120 tok/s, generation ~12 tok/s). Run as a file, not as part of the gome package,
so the server's process does not import the agent.
"""

import runpy

from llama_cpp import llama_cpp as _lib

_default_params = _lib.llama_model_default_params


def _params_without_repacking():
    params = _default_params()
    params.use_extra_bufts = False
    return params


_lib.llama_model_default_params = _params_without_repacking  # llama_cpp.Llama reads it from the module

if __name__ == "__main__":
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
