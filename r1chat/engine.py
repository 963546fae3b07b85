"""Load a GGUF model through llama-cpp-python and stream chat turns."""

from __future__ import annotations

import importlib
import sys
import threading

_import_lock = threading.Lock()


def import_llama_cpp():
    """Import and return the `llama_cpp` module.

    Termux's Python reports `sys.platform == "android"`, which
    llama-cpp-python's library loader rejects as an unsupported platform.
    Android's shared libraries load like Linux ones, so the import runs with
    the platform presented as "linux", and only for that import.
    """
    module = sys.modules.get("llama_cpp")
    if module is not None:
        return module
    with _import_lock:
        if sys.platform != "android":
            return importlib.import_module("llama_cpp")
        sys.platform = "linux"
        try:
            return importlib.import_module("llama_cpp")
        finally:
            sys.platform = "android"
