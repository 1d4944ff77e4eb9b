"""The one exception tree of the library.

Every error the library raises on purpose derives from :class:`InferenceGuardError`::

    InferenceGuardError
    ├── ConfigError (ValueError)          a configuration value is invalid
    ├── InputError (ValueError)           a request (messages, tools, prompt) is invalid
    │   └── ContextLengthError            the prompt does not fit the model's context window
    ├── ModelLoadError (OSError)          a model, tokenizer or scorer could not be loaded
    ├── CriticMismatchError (ValueError)  a critic was trained for another model / cost model
    ├── ArtifactError (ValueError)        a saved file (critic, cost model) is truncated or tampered
    ├── ScorerError (RuntimeError)        a cost or reward model returned something unusable
    ├── ResourceError (MemoryError)       a request would exceed the configured memory bound
    └── SafetyExhaustedError              no safe continuation was found and the config asked to raise

Running out of safe continuations is normally a *result*, not an exception
(``finish_reason="safety"`` with ``SafetyReport.exhausted=True``); only
``GuardConfig(on_exhausted="raise")`` turns it into :class:`SafetyExhaustedError`.

Every message says what was wrong, which value was received, and how to fix it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArtifactError",
    "ConfigError",
    "ContextLengthError",
    "CriticMismatchError",
    "InferenceGuardError",
    "InputError",
    "ModelLoadError",
    "ResourceError",
    "SafetyExhaustedError",
    "ScorerError",
]


class InferenceGuardError(Exception):
    """Root of every error raised on purpose by InferenceGuard.

    Attributes:
        hint: a short, actionable fix, also appended to the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(f"{message} Fix: {hint}" if hint else message)


class ConfigError(InferenceGuardError, ValueError):
    """A configuration value is invalid (names the parameter and the accepted range)."""


class InputError(InferenceGuardError, ValueError):
    """A request is invalid: empty or malformed messages, unknown roles, bad tools."""


class ContextLengthError(InputError):
    """The rendered prompt plus the requested new tokens do not fit the context window."""


class ModelLoadError(InferenceGuardError, OSError):
    """A model, tokenizer or scorer could not be loaded (missing files, offline hub, bad id)."""


class CriticMismatchError(InferenceGuardError, ValueError):
    """A critic was trained for another base model, hidden size, block length or cost model."""


class ArtifactError(InferenceGuardError, ValueError):
    """A saved artefact (critic, cost-model head) is truncated, tampered with or of an unknown version."""


class ScorerError(InferenceGuardError, RuntimeError):
    """A cost or reward model returned NaN, infinities or a tensor of the wrong shape."""


class ResourceError(InferenceGuardError, MemoryError):
    """A request would allocate more than the configured memory bound."""


class SafetyExhaustedError(InferenceGuardError):
    """No safe continuation was found and ``GuardConfig(on_exhausted="raise")`` was set.

    Attributes:
        result: the :class:`~inferenceguard.GuardResult` that would have been returned
            (its text is the last verified-safe prefix, possibly empty).
    """

    def __init__(self, message: str, *, result: Any, hint: str | None = None) -> None:
        self.result = result
        super().__init__(message, hint=hint)
