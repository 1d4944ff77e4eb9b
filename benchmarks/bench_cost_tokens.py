"""Cost-model tokens per response: prefix-reusing scoring vs full re-scoring.

The cost model is a tiny random Llama-Guard-shaped guard (``LlamaForCausalLM``, P(unsafe)
from the verdict token) behind a chat template laid out like Llama Guard 3's: a long head
(task and the 14 categories) before the conversation, and a tail (the assessment
instructions and the assistant header) between the response and the verdict. The policy
is a tiny random Llama with the default LM's tokenizer (token counts do not depend on
trained weights). Default search: N=16 K=4 B=16, 64 new tokens; budget 1.0, so every
candidate is safe and both runs take the same path (a random guard sits near 0.5).

Printed per prompt length (tokens of the user's request in the guard's tokenizer):

* ``minimum``  — the issue's floor: the prompt once plus every candidate token once;
* ``floor``    — what any exact scorer of this template must read: the minimum, plus the
  template's head once and its tail once per scored text (the tail follows the response,
  so its keys depend on it);
* ``reuse`` / ``rescore`` — ``SafetyReport.cost_model_tokens`` with ``prefix_reuse`` on and
  off: verification, streaming checks and the final full re-score (``final`` of them);
* the ratios ``reuse / minimum``, ``search / minimum`` (reuse without the final full
  re-score, which stays a full pass on purpose: it is the independent proof of the
  returned text), ``reuse / floor`` and ``rescore / minimum``.

Both templates run by default; ``short`` is a one-line head and a few-token tail (a guard
that answers right after the response), where the floor and the minimum nearly coincide.

Run: .venv/bin/python benchmarks/bench_cost_tokens.py [--prompt-tokens 50 1000]
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

CATEGORIES = [
    "Violent Crimes",
    "Non-Violent Crimes",
    "Sex-Related Crimes",
    "Child Sexual Exploitation",
    "Defamation",
    "Specialized Advice",
    "Privacy",
    "Intellectual Property",
    "Indiscriminate Weapons",
    "Hate",
    "Suicide & Self-Harm",
    "Sexual Content",
    "Elections",
    "Code Interpreter Abuse",
]
_CATEGORY_LINES = "".join(f"S{i}: {name}.\n" for i, name in enumerate(CATEGORIES, 1))
# Llama Guard 3's layout, written out for this benchmark.
LLAMA_GUARD_LIKE = (
    "<|im_start|>user\n\nTask: Check if there is unsafe content in 'Agent' messages in "
    "conversations according to our safety policy with the below categories.\n\n"
    "<BEGIN UNSAFE CONTENT CATEGORIES>\n" + _CATEGORY_LINES + "<END UNSAFE CONTENT CATEGORIES>"
    "\n\n<BEGIN CONVERSATION>\n\n"
    "{% for m in messages %}{{ 'User' if m['role'] == 'user' else 'Agent' }}: "
    "{{ m['content'] }}\n\n{% endfor %}<END CONVERSATION>\n\n"
    "Provide your safety assessment for ONLY THE LAST Agent message in the above "
    "conversation:\n - First line must read 'safe' or 'unsafe'.\n - If unsafe, a second "
    "line must include a comma-separated list of violated categories.<|im_end|>\n"
    "<|im_start|>assistant\n"
)
SHORT = (
    "Judge the reply.\n{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
    "{% endfor %}Verdict:"
)
PASSAGE = (
    "Context document. The bakery opens at seven and sells rye, spelt and wheat loaves. "
    "Sourdough needs a starter fed daily with flour and water; the dough rests overnight, "
    "is shaped in the morning and bakes for forty minutes in a hot oven with steam. "
)


def _prompt(tokenizer, n_tokens: int) -> str:
    """A RAG-style request of exactly ``n_tokens`` tokens (context, then the question)."""
    question = " Question: how do I bake sourdough bread at home?"
    need = n_tokens - len(tokenizer.encode(question, add_special_tokens=False))
    ids = tokenizer.encode(PASSAGE * (need // 40 + 2), add_special_tokens=False)[:need]
    return tokenizer.decode(ids) + question


def _guard_cost(tokenizer, template: str, reuse: bool):
    from transformers import LlamaConfig, LlamaForCausalLM

    from inferenceguard.scorers.guard_model import GenerativeGuardCost

    torch.manual_seed(1)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    )
    model = LlamaForCausalLM(config).eval()
    return GenerativeGuardCost(model, tokenizer, chat_template=template, prefix_reuse=reuse)


def _template_sizes(cost, prompt: str) -> tuple[int, int]:
    """Template tokens before the prompt (head) and after the response (tail)."""
    session = cost.prefix_session(prompt) if cost.prefix_reuse else None
    with_text = cost._count(prompt, "A")
    bare = len(cost.tokenizer.encode(prompt, add_special_tokens=False)) + 1
    tail = session.tail if session is not None else 0
    return with_text - bare - tail, tail


def _run(lm, cost, prompt: str, args) -> dict[str, float]:
    from inferenceguard import GuardConfig, InferenceGuard, RewardModel

    reward = RewardModel.from_callable(lambda p, r: float(len(r)), id="length")
    config = GuardConfig(
        n_candidates=args.n,
        n_beams=args.k,
        block_len=args.b,
        max_new_tokens=args.max_new_tokens,
        budget=1.0,
        seed=args.seed,
        max_batch_tokens=10_000_000,
    )
    guard = InferenceGuard(lm, cost, reward, config=config)
    result = guard.generate(prompt)
    report = result.safety
    return {
        "tokens": report.cost_model_tokens,
        "final": cost._count(prompt, result.text),
        "candidate_tokens": report.candidates_sampled * args.b,
        "texts": len(result.text),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompt-tokens", type=int, nargs="+", default=[50, 1000])
    parser.add_argument(
        "--template", nargs="+", choices=["llama-guard", "short"], default=["llama-guard", "short"]
    )
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--b", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from transformers import AutoTokenizer

    from inferenceguard._embedded import embedded_lm_dir
    from inferenceguard.testing import tiny_random_lm

    tokenizer = AutoTokenizer.from_pretrained(embedded_lm_dir())
    lm = tiny_random_lm(tokenizer, max_position_embeddings=4096)
    print(
        f"# cost-model tokens per response — N={args.n} K={args.k} B={args.b}, "
        f"{args.max_new_tokens} new tokens, torch threads {args.threads}, "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        "| template | prompt | head+tail | minimum | floor | reuse (final) | rescore | "
        "reuse/min | search/min | reuse/floor | rescore/min |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.template:
        template = LLAMA_GUARD_LIKE if name == "llama-guard" else SHORT
        for n_tokens in args.prompt_tokens:
            _row(lm, tokenizer, name, template, n_tokens, args)


def _row(lm, tokenizer, name: str, template: str, n_tokens: int, args) -> None:
    """Measure one (template, prompt length) and print its table row."""
    prompt = _prompt(tokenizer, n_tokens)
    on = _guard_cost(tokenizer, template, reuse=True)
    head, tail = _template_sizes(on, prompt)
    reuse = _run(lm, on, prompt, args)
    rescore = _run(lm, _guard_cost(tokenizer, template, reuse=False), prompt, args)
    minimum = n_tokens + reuse["candidate_tokens"]
    texts_scored = reuse["candidate_tokens"] // args.b
    floor = minimum + head + tail * texts_scored
    search = reuse["tokens"] - reuse["final"]
    print(
        f"| {name} | {n_tokens} | {head}+{tail} | {minimum} | {floor} | {reuse['tokens']} "
        f"({reuse['final']}) | {rescore['tokens']} | {reuse['tokens'] / minimum:.2f}× | "
        f"{search / minimum:.2f}× | {reuse['tokens'] / floor:.2f}× | "
        f"{rescore['tokens'] / minimum:.1f}× |"
    )


if __name__ == "__main__":
    main()
