"""Placeholders for the dtype names the converter's tables mention that
Debian's torch 1.13 lacks (float8 and unsigned types). No tensor of these
types is read in the tests; the names only have to exist."""

try:
    import torch

    class _MissingDtype:
        def __init__(self, name):
            self.name = name

        def __repr__(self):
            return f"torch.{self.name} (placeholder)"

    for _name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "uint16", "uint32", "uint64"):
        if not hasattr(torch, _name):
            setattr(torch, _name, _MissingDtype(_name))
except ImportError:
    pass
