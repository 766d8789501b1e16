"""The one interface every inference backend implements.

Backends only move tensors: named float32 arrays in, named arrays out, exactly as the model
graph defines them. Letterboxing, decoding, NMS and CTC decoding live in edge.detect.vision,
edge.detect.plate_input and edge.detect.ctc so that every backend gives the same answer for the
same frame.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

# A dimension is an int when the model fixes it, None when it is dynamic (batch, usually).
Shape = tuple[int | None, ...]


@runtime_checkable
class Backend(Protocol):
    @property
    def input_names(self) -> list[str]: ...

    @property
    def output_names(self) -> list[str]: ...

    @property
    def input_shapes(self) -> dict[str, Shape]: ...

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model once. Every output is returned as an array the caller owns."""
        ...

    def close(self) -> None:
        """Release sessions and device memory; the backend is unusable afterwards."""
        ...


class BackendError(RuntimeError):
    """A model file could not be loaded or run (message names the file)."""


def check_inputs(backend: Backend, inputs: dict[str, np.ndarray], model: str) -> None:
    """Fail with a message naming the model and tensor when inputs do not fit the graph."""
    missing = [n for n in backend.input_names if n not in inputs]
    if missing:
        raise BackendError(
            f"{model}: missing input(s) {missing}; the model expects {backend.input_names}"
        )
    for name in backend.input_names:
        shape, want = inputs[name].shape, backend.input_shapes[name]
        if len(shape) != len(want) or any(
            w is not None and w != s for s, w in zip(shape, want, strict=True)
        ):
            raise BackendError(f"{model}: input {name!r} has shape {shape}, model wants {want}")
