"""The labelled (prompt, response) pairs the probe is trained and evaluated on.

Labelled harmful *responses* are scarce, so most pairs are built from harmful and benign
*prompts* with responses whose form does not give the label away: every harmful request
gets one compliant answer (unsafe) and one refusal naming the topic (safe) from the same
template families, and benign requests get the same compliant templates (safe). The label
then depends on the pair, not on "Sure, here is" nor on the topic words alone.

Templates are split like the requests (:func:`template_pool`), so the test split has
unseen requests *and* unseen phrasings. Refusals among the default LM's own answers are
recognised by :func:`inferenceguard.evaluation.metrics.is_refusal`, the same rule the
over-refusal metric uses, so the probe is trained and measured on one meaning of "refusal".
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ...evaluation.metrics import is_refusal
from .data import DEFAULT_SEED, Example, Sources, norm, split_of, toxigen_groups
from .texts import texts

__all__ = [
    "build_eval_sets",
    "build_examples",
    "drop_eval_prompts",
    "eval_prompt_keys",
    "request_phrase",
    "template_pool",
]

# fmt: off
_IMPERATIVE = frozenset({
    "write", "create", "develop", "provide", "give", "instruct", "outline", "design", "teach",
    "explain", "generate", "describe", "produce", "publish", "show", "demonstrate", "suggest",
    "offer", "guide", "compose", "list", "make", "name", "identify", "construct", "find",
    "compare", "rewrite", "summarize", "summarise", "tell", "brainstorm", "convert", "analyze",
    "analyse", "determine", "translate", "plan", "draft", "help", "build", "post", "share",
    "devise", "detail", "send", "convince", "encourage", "persuade", "come", "cause", "hack",
    "steal", "spread", "promote", "craft", "prepare", "conduct", "use",
    "get", "recommend", "choose", "calculate", "classify", "edit", "predict", "imagine",
    "propose", "formulate", "evaluate",
})
# fmt: on
_HOW_TO = re.compile(
    r"^(?:please |can you |could you |would you |"
    r"how (?:do|can|could|should|would|might) (?:i|we|you|one|someone) |how to |"
    r"what(?:'s| is) the (?:best|easiest|quickest) way to )",
    re.IGNORECASE,
)
_PERSON = {"i": "you", "my": "your", "me": "you", "myself": "yourself", "mine": "yours"}
#: Which of every five templates (by index) each split may use: 60/20/20.
_TEMPLATE_SLOTS = {"train": (0, 1, 2), "val": (3,), "test": (4,)}


def request_phrase(prompt: str) -> str | None:
    """The request as an imperative verb phrase ("kill a Python process"), or None.

    Handles imperatives ("Write …") and "how do I / how to / can you …" questions,
    switching first to second person ("my" -> "your") so templates read naturally.
    """
    text = " ".join(prompt.split()).rstrip(" .!?:")
    m = _HOW_TO.match(text)
    if m:
        rest = text[m.end() :]
        words = [_PERSON.get(w.lower(), w) for w in rest.split(" ")]
        return " ".join(words) if len(words) >= 2 else None
    words = text.split(" ", 1)
    if len(words) < 2 or words[0].lower() not in _IMPERATIVE:
        return None
    return words[0].lower() + " " + words[1]


def template_pool(templates: Sequence[str], split: str) -> list[str]:
    """The templates ``split`` may use (round-robin by index, so test phrasings are unseen)."""
    slots = _TEMPLATE_SLOTS[split]
    return [t for i, t in enumerate(templates) if i % 5 in slots]


def _lc_first(s: str) -> str:
    return s[:1].lower() + s[1:]


def _uc_first(s: str) -> str:
    return s[:1].upper() + s[1:]


def _fill(rng: random.Random, prompt: str, split: str, comply: bool, with_body: bool) -> str:
    """A compliant or refusing answer to ``prompt`` from ``split``'s templates."""
    t = texts("responses")
    req = request_phrase(prompt)
    if comply:
        pool = template_pool(t["comply_vp"] if req else t["comply_q"], split)
    else:
        pool = template_pool(t["refuse_vp"] if req else t["refuse_q"], split)
    template = rng.choice(pool)
    body = rng.choice(template_pool(t["bodies"], split))
    q = " ".join(prompt.split())
    if comply and not with_body:
        # The opener only ("Sure, here is how to X"), like AdvBench targets and early blocks.
        template = template.split("{body")[0].rstrip(" :,\n")
    return template.format(req=req or "", q=q, body=body, body_lc=_lc_first(body))


class _Builder:
    """Collects examples; every random choice comes from one seeded ``random.Random``.

    The order of the ``_add_*`` calls in :func:`build_examples` is part of the data set:
    each consumes the shared generator, so reordering them changes every later example.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.out: list[Example] = []

    def add(self, prompt: str, response: str, label: int, source: str, group: str) -> None:
        """Add a pair whose split follows its group key."""
        self.out.append(Example(prompt, response, label, source, group, split_of(group, self.seed)))

    def add_answers(self, prompt: str, harmful: bool, source: str, refusal_rate: float) -> None:
        """A templated compliant answer (unsafe iff ``harmful``), and maybe a refusal (safe)."""
        g = "p:" + norm(prompt)
        s = split_of(g, self.seed)
        comply = _fill(self.rng, prompt, s, True, self.rng.random() < 0.7)
        self.add(prompt, comply, int(harmful), f"{source}_comply_tpl", g)
        # A sure refusal draws no random number: the draws, and so the data set, stay put.
        if refusal_rate >= 1 or self.rng.random() < refusal_rate:
            self.add(prompt, _fill(self.rng, prompt, s, False, True), 0, f"{source}_refusal_tpl", g)


def _add_harmful_requests(b: _Builder, src: Sources) -> None:
    # AdvBench openers (unsafe), templated compliance (unsafe) and templated refusals
    # naming the topic (safe): the topic alone predicts nothing.
    for goal, target in src.advbench:
        b.add(goal, target, 1, "advbench_target", "p:" + norm(goal))
    for name, prompt in src.harmful_prompts():
        b.add_answers(prompt, True, name, refusal_rate=1.0)
    for behaviour, refusal in src.harmbench_safe:
        b.add(behaviour, refusal, 0, "harmbench_safe_response", "p:" + norm(behaviour))


def _add_benign_requests(b: _Builder, src: Sources, n_benign: int) -> None:
    # The same compliance templates (safe), and some refusals (safe).
    for prompt in b.rng.sample(src.alpaca, n_benign):
        b.add_answers(prompt, False, "alpaca", refusal_rate=0.15)
    for qid, question, answer in src.mt_bench:
        b.add(question, answer, 0, "mt_bench_reference", "mt:" + qid.rsplit(":", 1)[0])


def _add_prompt_free_texts(b: _Builder, src: Sources) -> list[str]:
    """Harmful strings and ToxiGen statements with generic prompts; returns those prompts.

    Toxic-looking RealToxicityPrompts openers are among the prompts (a toxic prompt is
    not a toxic response); ToxiGen neutral and friendly replies get the same prompts.
    """
    prompts = texts("prompts")
    generic = list(prompts["generic"]) + b.rng.sample(src.rtp, 200)
    for text in src.harmful_strings:
        b.add(b.rng.choice(generic), text, 1, "advbench_harmful_string", "r:" + norm(text))
    for group, kind, text in src.toxigen:
        prompt = (
            b.rng.choice(prompts["group"]).format(g=group)
            if b.rng.random() < 0.7
            else b.rng.choice(generic)
        )
        b.add(prompt, text, int(kind == "hate"), f"toxigen_{kind}", "r:" + norm(text))
    replies = texts("statements")["neutral_replies"]
    for prompt in generic:
        b.add(prompt, b.rng.choice(replies), 0, "neutral_reply", "p:" + norm(prompt))
    return generic


def _template_split(k: int) -> str:
    # The templates are split too: one template, one split.
    return ("train", "train", "train", "val", "test")[k % 5]


def _add_group_statements(b: _Builder) -> None:
    # Demeaning vs neutral statements about the same groups, with group prompts.
    statements, group_prompts = texts("statements"), texts("prompts")["group"]
    for name in toxigen_groups():
        for toxic in (True, False):
            templates = statements["group_hate" if toxic else "group_neutral"]
            for k, template in enumerate(templates):
                text = template.format(G=_uc_first(name), g=name)
                prompt = b.rng.choice(group_prompts).format(g=name)
                source = "group_hate_tpl" if toxic else "group_neutral_tpl"
                b.out.append(
                    Example(
                        prompt,
                        text,
                        int(toxic),
                        source,
                        f"group:{int(toxic)}:{k}",
                        _template_split(k),
                    )
                )


def _add_abuse(b: _Builder, generic: Sequence[str]) -> None:
    # Abuse aimed at the reader vs civil replies sharing its words, with generic prompts.
    statements = texts("statements")
    for _ in range(400):
        for toxic in (True, False):
            templates = statements["abuse" if toxic else "civil"]
            k = b.rng.randrange(len(templates))
            words = {key: b.rng.choice(v) for key, v in statements["abuse_words"].items()}
            text = templates[k].format(**words)
            source = "abuse_tpl" if toxic else "civil_tpl"
            b.out.append(
                Example(
                    b.rng.choice(generic),
                    text,
                    int(toxic),
                    source,
                    f"abuse:{int(toxic)}:{k}",
                    _template_split(k),
                )
            )


def _add_lm_answers(b: _Builder, generated: Sequence[dict[str, Any]]) -> None:
    """The default LM's own answers, labelled by what was asked and whether it refused."""
    for row in generated:
        kind, prompt, response = row["kind"], row["prompt"], row["prefix"] + row["completion"]
        g = "p:" + norm(prompt)
        if kind == "harmful_forced":
            if is_refusal(row["completion"]):
                continue  # "Sure, here is … I can't" is ambiguous: leave it out
            b.add(prompt, response.strip(), 1, "lm_harmful_forced", g)
        elif kind == "harmful_free":
            refused = is_refusal(response)
            source = f"lm_harmful_free_{'refusal' if refused else 'comply'}"
            b.add(prompt, response.strip(), int(not refused), source, g)
        elif kind in ("benign_forced", "benign_free"):
            b.add(prompt, response.strip(), 0, f"lm_{kind}", g)


# ------------------------------------------------------------------ issue 16 texts


def _steps(steps: Sequence[str]) -> dict[str, str]:
    """The placeholders of a ``benign_styles`` template for one item's steps."""
    words = ("First, ", "Then ", "Next, ", "After that, ")
    prose = " ".join(
        f"{words[i] if i < len(steps) - 1 else 'Finally, '}{_lc_first(s)}."
        for i, s in enumerate(steps)
    )
    return {
        "numbered": "\n".join(f"{i}. {s}." for i, s in enumerate(steps, 1)),
        "prose": prose,
        "first": steps[0],
        "first_lc": _lc_first(steps[0]),
    }


def _add_procedural_benign(b: _Builder) -> None:
    # Benign requests for steps and advice, answered helpfully in varied styles (safe):
    # "gives steps" must not read as "complies with a harmful request".
    t = texts("procedural")
    for item in t["benign"]:
        g = "p:" + norm(item["q"])
        pool = template_pool(t["benign_styles"], split_of(g, b.seed))
        fill = _steps(item["steps"])
        for style in b.rng.sample(pool, min(3, len(pool))):
            b.add(item["q"], style.format(q=item["q"], **fill), 0, "howto_comply_tpl", g)


def _harm_fill(item: Any) -> dict[str, str]:
    text, topic = item["text"], item["topic"]
    safe = "\n".join(f"{i}. {s}." for i, s in enumerate(item["safe"], 1))
    return {
        "text": text,
        "text_lc": _lc_first(text),
        "topic": topic,
        "topic_cap": _uc_first(topic),
        "safe": safe,
    }


#: (style set of procedural.json, source suffix, label) for each harmful request.
_HARM_ANSWERS = (
    ("harm_comply", "comply_tpl", 1),
    ("harm_hedged", "hedged_comply_tpl", 1),  # a disclaimer, then compliance: complies
    ("harm_rtc", "rtc_comply_tpl", 1),  # "I can't … but here's how": complies (fail-closed)
    ("refusal", "refusal_tpl", 0),
    ("redirect", "redirect_refusal_tpl", 0),  # refuses, names the topic, gives safe steps
)


def _add_procedural_harmful(b: _Builder) -> None:
    # Harmful requests (threats, harassment, phishing, scams, encouragement, illegal
    # acts), each with every answer family: plain, hedged and refuse-then-comply
    # compliance (unsafe), refusals and safe redirections naming the topic (safe).
    t = texts("procedural")
    for item in t["harmful"]:
        g = "p:" + norm(item["q"])
        split = split_of(g, b.seed)
        fill = _harm_fill(item)
        for name, suffix, label in _HARM_ANSWERS:
            # Two phrasings of each family: there are few harmful items per kind.
            for style in b.rng.sample(template_pool(t[name], split), 2):
                b.add(item["q"], style.format(**fill), label, f"hx_{item['kind']}_{suffix}", g)


def _add_group_questions(b: _Builder) -> None:
    # Demeaning questions about groups (harmful requests): answers affirming the premise
    # are unsafe, rebuttals are safe. Split by question template, answers by split too.
    t = texts("procedural")
    for k, question in enumerate(t["group_q"]):
        split = _template_split(k)
        for name in [*toxigen_groups(), *t["extra_groups"]]:
            fill = {"g": name, "G": _uc_first(name)}
            prompt = question.format(**fill)
            for key, label, source in (
                ("group_comply", 1, "groupq_comply_tpl"),
                ("group_refuse", 0, "groupq_refusal_tpl"),
            ):
                text = b.rng.choice(template_pool(t[key], split)).format(**fill)
                b.out.append(Example(prompt, text, label, source, f"groupq:{k}", split))


def _add_wrapped_compliance(b: _Builder) -> None:
    # Hedged ("I'm not here to judge, but …") and refuse-then-comply ("I can't … but
    # here's how") versions of some templated compliant answers to the older harmful
    # requests and to the group questions: a disclaimer does not make compliance safe.
    # Same group and split as the answer they wrap.
    t = texts("procedural")
    older = [
        ex
        for ex in b.out
        if ex.label == 1 and ex.source.endswith("_comply_tpl") and not ex.source.startswith("hx_")
    ]
    for ex in older:
        if b.rng.random() >= 0.35:
            continue
        name = "harm_hedged" if b.rng.random() < 0.5 else "harm_rtc"
        style = b.rng.choice(template_pool(t[name], ex.split))
        text = style.format(
            text=ex.response, text_lc=_lc_first(ex.response), topic="that", topic_cap="That"
        )
        source = ex.source.removesuffix("_comply_tpl") + f"_{name.removeprefix('harm_')}_comply_tpl"
        b.out.append(Example(ex.prompt, text, 1, source, ex.group, ex.split))


def _prefix_of(rng: random.Random, ex: Example) -> list[Example]:
    words = ex.response.split(" ")
    if len(words) < 8:
        return []
    cut = rng.randint(3, len(words) - 3)
    response = " ".join(words[:cut])
    return [Example(ex.prompt, response, ex.label, ex.source + "+prefix", ex.group, ex.split)]


def _add_safe_prefixes(b: _Builder) -> None:
    # The search scores prefixes, so teach that a prefix of a safe response is safe.
    # (A prefix of an unsafe one may be harmless, so those are not added.)
    extra: list[Example] = []
    for ex in b.out:
        if ex.label == 0 and b.rng.random() < 0.3:
            extra += _prefix_of(b.rng, ex)
    b.out += extra


def _unique(examples: Sequence[Example]) -> list[Example]:
    # Templated sources can produce the same pair twice; keep the first, drop empty answers.
    seen: set[tuple[str, str]] = set()
    unique = []
    for ex in examples:
        if ex.response.strip() and (ex.prompt, ex.response) not in seen:
            seen.add((ex.prompt, ex.response))
            unique.append(ex)
    return unique


def build_examples(
    src: Sources,
    generated: Sequence[dict[str, Any]] = (),
    seed: int = DEFAULT_SEED,
    n_benign: int = 2000,
) -> list[Example]:
    """The labelled train/val/test pairs (evaluation-only sets are in :func:`build_eval_sets`).

    Args:
        src: raw texts from :func:`~.data.load_sources`.
        generated: cached default-LM answers (:func:`~.data.load_generated`).
        seed: drives every random choice (templates, prompt sampling, prefix cuts).
        n_benign: how many Alpaca instructions to use as benign requests.

    Returns:
        Examples in a deterministic order.
    """
    b = _Builder(seed)
    _add_harmful_requests(b, src)
    _add_benign_requests(b, src, n_benign)
    generic = _add_prompt_free_texts(b, src)
    _add_group_statements(b)
    _add_abuse(b, generic)
    # Scary-sounding but benign requests: compliant answers and refusals, both safe.
    for prompt in texts("prompts")["scary_safe"]:
        b.add_answers(prompt, False, "scary_safe", refusal_rate=1.0)
    _add_lm_answers(b, generated)
    # Issue 16: procedural answers, more kinds of harmful compliance, group questions
    # (added after the older families so their random draws stay as they were).
    _add_procedural_benign(b)
    _add_procedural_harmful(b)
    _add_group_questions(b)
    _add_wrapped_compliance(b)
    _add_safe_prefixes(b)
    return _unique(b.out)


def _xstest_sets(
    rng: random.Random, src: Sources, generated: Sequence[dict[str, Any]]
) -> tuple[list[Example], list[Example]]:
    """``xstest_tpl`` (held-out templates on XSTest prompts) and ``xstest_lm`` (LM answers)."""
    tpl: list[Example] = []
    for prompt, typ, label in src.xstest:
        unsafe = int(label == "unsafe")
        comply = _fill(rng, prompt, "test", True, rng.random() < 0.7)
        tpl.append(Example(prompt, comply, unsafe, f"xstest_comply_{label}", typ, "xstest_tpl"))
        refuse = _fill(rng, prompt, "test", False, True)
        tpl.append(Example(prompt, refuse, 0, f"xstest_refusal_{label}", typ, "xstest_tpl"))
    labels = {norm(p): lab for p, _t, lab in src.xstest}
    lm: list[Example] = []
    for row in generated:
        if row["kind"] != "xstest":
            continue
        response = (row["prefix"] + row["completion"]).strip()
        lab = labels.get(norm(row["prompt"]), "safe")
        unsafe = int(lab == "unsafe" and not is_refusal(response))
        lm.append(Example(row["prompt"], response, unsafe, f"xstest_lm_{lab}", lab, "xstest_lm"))
    return tpl, lm


def build_eval_sets(
    src: Sources,
    generated: Sequence[dict[str, Any]] = (),
    handwritten: Sequence[dict[str, Any]] = (),
    seed: int = DEFAULT_SEED,
) -> dict[str, list[Example]]:
    """Evaluation-only sets, never trained on.

    * ``pku``: the 20 PKU-SafeRLHF responses (real model answers, human safety labels).
    * ``xstest_tpl``: XSTest prompts with a held-out-template compliant answer (unsafe iff
      the prompt is XSTest-unsafe) — can the probe tell "how to kill a Python process"
      from "how to kill a person" when both are answered? Plus a refusal for each (safe).
    * ``xstest_lm``: the default LM's answers to XSTest prompts; safe prompts' answers are
      safe, unsafe prompts' answers are unsafe unless they refuse (heuristic labels).
    * ``handwritten``: hand-written pairs in ``benchmarks/data/handwritten_eval.jsonl``.
    """
    pku = [
        Example(prompt, response, unsafe, "pku", f"pku:{i // 2}", "pku")
        for i, (prompt, response, unsafe) in enumerate(src.pku)
    ]
    xstest_tpl, xstest_lm = _xstest_sets(random.Random(seed + 1), src, generated)
    hw = [
        Example(
            row["prompt"],
            row["response"],
            int(row["unsafe"]),
            row.get("kind", "handwritten"),
            f"hw:{i}",
            "handwritten",
        )
        for i, row in enumerate(handwritten)
    ]
    return {"pku": pku, "xstest_tpl": xstest_tpl, "xstest_lm": xstest_lm, "handwritten": hw}


def eval_prompt_keys(evals: Mapping[str, Sequence[Example]]) -> set[str]:
    """The normalised requests (:func:`~.data.norm`) of every evaluation set: what the
    probe, the request gate and the response judge each hold out of training."""
    return {norm(ex.prompt) for rows in evals.values() for ex in rows}


def drop_eval_prompts(
    examples: Sequence[Example], evals: dict[str, list[Example]]
) -> tuple[list[Example], int]:
    """``examples`` minus every pair whose request is also a request of an evaluation set.

    The evaluation sets are held out *by prompt*: the audit's prompts, for example, come
    from AdvBench, HarmBench and StrongREJECT, which the probe also trains on, so without
    this the audit's answers would be scored by a probe that saw their requests.
    """
    held_out = eval_prompt_keys(evals)
    kept = [ex for ex in examples if norm(ex.prompt) not in held_out]
    return kept, len(examples) - len(kept)
