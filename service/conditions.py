"""What a model can be asked for besides a seed: the grain count of a model conditioned on it.

    view = with_grains(generator, 10)        # ConditionError (a message naming the range) when it cannot
    images = view(seeds, indices)            # every image drawn with 10 grains
    stream = batcher.open(view, seed, 0, n)  # the view is a model like the generator itself

A model trained with `condition=grains` states its trained range in its card ("condition": name,
min, max, histogram). A view behaves as its generator in every way the routes use (name, version,
precision, head, partition ...) but draws through the model's `_grains` signatures; one view per
(generator, count) is kept (in `generator.views`), so the batcher merges concurrent requests for the same count.
"""

from __future__ import annotations

import numpy as np

from service.errors import ConditionError


def conditions_of(generator) -> dict[str, dict]:
    """{"grains": {"min": .., "max": ..}} for a conditional model, {} otherwise (GET /models)."""
    condition = getattr(generator, "condition", None)
    if not condition:
        return {}
    return {condition["name"]: {"min": int(condition["min"]), "max": int(condition["max"])}}


class GrainsView:
    """A generator asked for `grains` grains per image."""

    def __init__(self, generator, grains: int) -> None:
        self.generator, self.grains = generator, grains

    def __getattr__(self, name: str):
        return getattr(self.generator, name)

    def __call__(self, seeds: np.ndarray, indices: np.ndarray) -> np.ndarray:
        return self.generator(seeds, indices, grains=self.grains)

    def partition(self, seeds: np.ndarray, indices: np.ndarray) -> dict[str, np.ndarray]:
        return self.generator.partition(seeds, indices, grains=self.grains)

    def __repr__(self) -> str:
        return f"{self.generator!r} with {self.grains} grains"


def with_grains(generator, grains: int) -> GrainsView:
    """The generator drawing `grains` grains per image; ConditionError outside its trained range."""
    trained = conditions_of(generator).get("grains")
    if trained is None:
        raise ConditionError(
            f"model {generator.name!r} version {generator.version} takes no grains condition "
            "(GET /models lists each model's conditions)"
        )
    if not trained["min"] <= grains <= trained["max"]:
        raise ConditionError(
            f"grains={grains} is outside the range model {generator.name!r} version {generator.version} "
            f"was trained on: {trained['min']}..{trained['max']}"
        )
    # Kept on the generator (it lives as long as the version stays loaded); setdefault is atomic.
    return generator.views.setdefault(grains, GrainsView(generator, grains))
