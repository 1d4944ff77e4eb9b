"""`make demo`: a plain chat with the embedded default model (replaced by the guarded
LangChain demo once the adapter lands)."""

from inferenceguard import LocalLM, SamplerSettings

lm = LocalLM.from_pretrained()
for question in ["What is the capital of France?", "Give me three tips for staying healthy."]:
    state = lm.prefill(lm.encode(lm.render(question)))
    block = lm.sample_block(state, 64, sampler=SamplerSettings(do_sample=False))
    print(f"Q: {question}\nA: {lm.decode(block.tokens[0, : block.lengths[0]])}\n")
