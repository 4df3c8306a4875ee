"""A torch function mode that records which torch functions a block of code called (for tests)."""

from __future__ import annotations

from torch.overrides import TorchFunctionMode


class Calls(TorchFunctionMode):
    """``with Calls() as calls: ...`` leaves every torch function called in the block in ``calls.called``."""

    def __init__(self) -> None:
        super().__init__()
        self.called: set = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.called.add(func)
        return func(*args, **(kwargs or {}))
