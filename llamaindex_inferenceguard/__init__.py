"""LlamaIndex adapter for InferenceGuard: almost surely safe decoding as a LlamaIndex LLM.

Usage::

    from llama_index.core import Settings
    from llamaindex_inferenceguard import InferenceGuardLLM

    Settings.llm = InferenceGuardLLM(max_new_tokens=128)   # embedded defaults, offline
"""

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "llamaindex_inferenceguard needs llama-index-core: pip install 'inferenceguard[llamaindex]'"
    ) from exc

from .base import InferenceGuardLLM
from .embeddings import MiniLMEmbedding

__all__ = ["InferenceGuardLLM", "MiniLMEmbedding"]
