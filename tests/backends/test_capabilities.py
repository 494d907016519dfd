"""Backends declare what they can do; callers read the declaration, never the class.

(a) each real backend's ``capabilities`` are the right ones, and agree with what its methods
actually accept and return; (b) no ``isinstance`` / ``issubclass`` / ``type(x) is`` test on a
class defined in ``backends/`` stands anywhere in ``uq/ judge/ ui/ cli/`` or ``app.py``, read
statically from the source with ``ast``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest
import torch
from transformers.generation.streamers import BaseStreamer

from backends.base import PROTOCOL_CAPABILITIES, Capabilities, SamplingParams, capabilities_of
from backends.hf import HFCausalLM
from backends.openai_compat import OpenAICompatLM
from tests.backends.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
CALLERS = ("uq", "judge", "ui", "cli", "app.py")

HF_CAPABILITIES = Capabilities(
    exact_scoring=True,
    per_row_temperature=True,
    streams=True,
    truncated_logprobs=False,
    token_ids=True,
)
OPENAI_CAPABILITIES = Capabilities(
    exact_scoring=False,
    per_row_temperature=False,
    streams=False,
    truncated_logprobs=True,
    token_ids=False,
    concurrent_calls=True,
    scoring="server_detect",
)
REAL_BACKENDS = [(HFCausalLM, HF_CAPABILITIES), (OpenAICompatLM, OPENAI_CAPABILITIES)]


# -- (a) declarations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "expected"), REAL_BACKENDS, ids=lambda x: getattr(x, "__name__", "")
)
def test_each_backend_declares_its_capabilities(cls, expected):
    assert cls.capabilities == expected


@pytest.mark.parametrize(
    ("cls", "expected"), REAL_BACKENDS, ids=lambda x: getattr(x, "__name__", "")
)
def test_declarations_agree_with_the_methods(cls, expected):
    caps = cls.capabilities
    batch = inspect.signature(cls.sample_batch).parameters
    assert caps.per_row_temperature == ("temperatures" in batch)
    assert caps.streams == (
        "streamer" in batch and "streamer" in inspect.signature(cls.greedy).parameters
    )
    assert caps.token_ids == hasattr(cls, "tokenizer")
    if not caps.exact_scoring:  # callers then read distributions from top-k samples
        assert callable(getattr(cls, "sample_with_top", None))


def test_every_language_model_class_in_backends_declares_capabilities():
    for path in sorted((ROOT / "backends").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            if "sample_batch" not in methods:
                continue
            declared = {
                t.id
                for n in node.body
                if isinstance(n, ast.Assign | ast.AnnAssign)
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                if isinstance(t, ast.Name)
            }
            assert "capabilities" in declared, f"{path.name}: {node.name} declares no capabilities"


def test_local_model_does_what_it_declares(tiny_lm):
    class Collect(BaseStreamer):
        def __init__(self):
            self.ids: list[int] = []

        def put(self, value):
            self.ids += value.flatten().tolist()

        def end(self):
            pass

    streamer = Collect()
    gen = tiny_lm.greedy("Capital of France?", max_new_tokens=4, streamer=streamer)
    assert gen.tokens and streamer.ids[-len(gen.tokens) :] == [t.token_id for t in gen.tokens]
    assert not gen.truncated
    rows = tiny_lm.sample_batch(
        ["a", "b"], SamplingParams(n=1, max_new_tokens=3, seed=0), temperatures=[0.5, 1.5]
    )
    assert len(rows) == 2
    assert tiny_lm.tokenizer is not None
    # Exact scoring: the teacher-forced log-probabilities of one plain forward pass.
    prompt, cont = "The sky is", " blue today"
    (score,) = tiny_lm.score(prompt, [cont], chat=False)
    p_ids, c_ids = tiny_lm._prompt_ids(prompt, False), tiny_lm._encode(cont)
    with torch.no_grad():
        logits = tiny_lm.model(input_ids=torch.tensor([p_ids + c_ids])).logits[0]
    logp = torch.log_softmax(logits.double(), -1)
    by_hand = [float(logp[len(p_ids) - 1 + j, t]) for j, t in enumerate(c_ids)]
    assert score.token_logprobs == pytest.approx(by_hand, abs=1e-4)


def test_server_model_does_what_it_declares():
    with FakeOpenAI() as server:
        lm = OpenAICompatLM(server.url, "fake-model", top_logprobs=3)
        gens = lm.sample("Capital of France?", SamplingParams(n=1, max_new_tokens=4, seed=0))
        assert gens[0].tokens and all(t.truncated for t in gens[0].tokens)
        with pytest.raises(TypeError):
            lm.sample_batch(["a"], SamplingParams(), temperatures=[0.5])
    assert not hasattr(lm, "tokenizer")


def test_capabilities_of_a_duck_typed_model():
    class Plain:
        model_id = "plain"

    class Declared:
        capabilities = Capabilities(per_row_temperature=True)

    class Wrong:
        capabilities = {"streams": True}

    assert capabilities_of(Plain()) is PROTOCOL_CAPABILITIES
    assert PROTOCOL_CAPABILITIES.exact_scoring and not PROTOCOL_CAPABILITIES.streams
    assert capabilities_of(Declared()).per_row_temperature
    with pytest.raises(TypeError, match="Capabilities"):
        capabilities_of(Wrong())
    with pytest.raises(dataclasses.FrozenInstanceError):
        HFCausalLM.capabilities.streams = False


# -- (b) no class tests in callers -----------------------------------------------------------


def backend_classes() -> set[str]:
    """Names of every class defined in ``backends/``."""
    return {
        node.name
        for path in (ROOT / "backends").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    }


def class_tests_on_backends(source: str, classes: set[str]) -> list[tuple[int, str]]:
    """(line, expression) of each ``isinstance`` / ``issubclass`` call or ``type(x) is|==``
    comparison in ``source`` whose class is one defined in ``backends/``: a name imported from
    a ``backends`` module (alias included) or an attribute path through one."""
    tree = ast.parse(source)
    names: set[str] = set()  # local names bound to a backends class
    modules: set[str] = set()  # local names bound to a backends module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "backends":
            for a in node.names:
                if a.name in classes:
                    names.add(a.asname or a.name)
                else:  # ``from backends import hf``
                    modules.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "backends":
                    modules.add(a.asname or "backends")

    def is_backend_class(expr: ast.expr) -> bool:
        if isinstance(expr, ast.Tuple):
            return any(is_backend_class(e) for e in expr.elts)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
            return is_backend_class(expr.left) or is_backend_class(expr.right)
        if isinstance(expr, ast.Name):
            return expr.id in names
        if isinstance(expr, ast.Attribute) and expr.attr in classes:
            root = expr.value
            while isinstance(root, ast.Attribute):
                root = root.value
            return isinstance(root, ast.Name) and root.id in modules
        return False

    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"isinstance", "issubclass"}
            and len(node.args) == 2
            and is_backend_class(node.args[1])
        ):
            found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Call)
            and isinstance(node.left.func, ast.Name)
            and node.left.func.id == "type"
            and any(is_backend_class(c) for c in node.comparators)
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


@pytest.mark.parametrize(
    "source",
    [
        "from backends.hf import HFCausalLM\nisinstance(lm, HFCausalLM)",
        "def f(lm):\n    from backends.hf import HFCausalLM as LM\n    return isinstance(lm, LM)",
        "import backends.openai_compat\nisinstance(lm, backends.openai_compat.OpenAICompatLM)",
        "from backends import hf\nisinstance(lm, (str, hf.HFCausalLM))",
        "from backends.base import Generation\nisinstance(g, int | Generation)",
        "from backends.hf import HFCausalLM\ntype(lm) is HFCausalLM",
        "from backends.nli import NLIModel\nissubclass(cls, NLIModel)",
    ],
)
def test_the_checker_finds_each_form_of_class_test(source):
    assert class_tests_on_backends(source, backend_classes())


def test_the_checker_ignores_other_classes():
    source = (
        "from backends.base import capabilities_of\nfrom uq.semantic.entailment import "
        "GeneratorEntailment\nisinstance(e, GeneratorEntailment)\nisinstance(x, str)\n"
        "capabilities_of(lm).streams"
    )
    assert class_tests_on_backends(source, backend_classes()) == []


def test_no_caller_tests_a_backend_class():
    classes = backend_classes()
    assert {"HFCausalLM", "OpenAICompatLM", "NLIModel"} <= classes
    files = []
    for entry in CALLERS:
        path = ROOT / entry
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    assert len(files) > 20
    found = [
        f"{path.relative_to(ROOT)}:{line}: {expr}"
        for path in files
        for line, expr in class_tests_on_backends(path.read_text(), classes)
    ]
    assert not found, "read capabilities_of(lm) instead of testing the class:\n" + "\n".join(found)
