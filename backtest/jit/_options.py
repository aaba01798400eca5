"""Options shared by every compiled kernel."""

JIT = {"cache": True, "nogil": True, "error_model": "numpy"}  # x / 0 -> inf / nan, no raise
