"""The latent critic at run time (DESIGN.md §5): the model and its file format.

Use a saved critic::

    guard = InferenceGuard(lm, cost, reward, critic=load_critic("my_critic/", lm=lm, cost_model=cost))

Training it (rollouts and the fit) is offline work in :mod:`inferenceguard.training.critic`,
or ``inferenceguard train-critic`` from the shell.
"""

from .io import load_critic, load_default_critic, read_critic_metadata, save_critic
from .model import CriticArchitecture, LatentCritic

__all__ = [
    "CriticArchitecture",
    "LatentCritic",
    "load_critic",
    "load_default_critic",
    "read_critic_metadata",
    "save_critic",
]
