"""The phases of `python -m bench.worker_bench`, a module each (see its docstring)."""
