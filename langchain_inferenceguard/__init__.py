"""LangChain adapter for InferenceGuard: ``ChatInferenceGuard``, a safe-decoding chat model.

Example::

    from langchain_inferenceguard import ChatInferenceGuard

    llm = ChatInferenceGuard(max_tokens=64)       # embedded models, loaded on first use
    print(llm.invoke("Give me one tip for staying healthy.").content)
"""

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "langchain_inferenceguard needs langchain-core: pip install 'inferenceguard[langchain]'"
    ) from exc

from .chat_models import ChatInferenceGuard

__all__ = ["ChatInferenceGuard"]
