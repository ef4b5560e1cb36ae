"""``ProgressDisplay``: redrawn every N iterations (and at each epoch's last), so a GPU is not read at every step."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine

from monai_ssl.handlers import ProgressDisplay


@pytest.mark.parametrize("every, expected", [(1, [1, 2, 3, 4, 5, 6, 7] * 2), (3, [3, 6, 7] * 2)])
def test_loss_is_read_every_n_iterations_and_at_the_epoch_end(every, expected):
    reads = []

    def loss_of(output):
        reads.append(output["iteration_in_epoch"])
        return {"loss": float(output["loss"])}

    engine = Engine(lambda e, b: {"loss": torch.tensor(1.0), "iteration_in_epoch": (e.state.iteration - 1) % 7 + 1})
    display = ProgressDisplay(output_transform=loss_of, update_every=every, desc="test")
    display.attach(engine)
    engine.run(range(7), max_epochs=2)
    assert reads == expected


def test_update_every_must_be_positive():
    with pytest.raises(ValueError, match="update_every"):
        ProgressDisplay(update_every=0)
