"""RecBole's Trainer, able to read its own checkpoints under torch >= 2.6.

RecBole 1.2.1 pickles its Config into every checkpoint and reads them back
with ``torch.load``, which since torch 2.6 refuses pickled objects
(``weights_only=True``). The checkpoints read here are the ones this process
wrote, so they are loaded with ``weights_only=False``; no environment
variable is needed.
"""

from __future__ import annotations

import torch
from recbole.trainer import Trainer
from recbole.utils import set_color


def load_checkpoint(path, map_location="cpu") -> dict:
    """A RecBole checkpoint (a dict with ``state_dict``, ``config``, ...). Only for trusted files."""
    return torch.load(path, map_location=map_location, weights_only=False)


class BudgetTrainer(Trainer):
    """RecBole's Trainer for budgeted backbones: unchanged training, checkpoint loading that works."""

    def load_best_model(self, model_file=None) -> None:
        """Load the parameters of ``model_file`` (default: this trainer's best checkpoint) into the model."""
        path = model_file or self.saved_model_file
        checkpoint = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(checkpoint["state_dict"])  # also drops cached propagations
        self.logger.info(set_color("Loading model structure and parameters from", "blue") + f" {path}")

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if eval_data and load_best_model:
            self.load_best_model(model_file)
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
