"""What the export benchmarks share: the model and adapter they use, `tunelab export` runs, GGUF inspection,
the llama.cpp worker, and the merged model's reference figures (transformers, float32).

Only the `tunelab` CLI and public libraries are used (transformers, gguf, psutil), so the scripts run on any
tunelab checkout that has `tunelab export`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from bench_predict import locked_launch
from bench_sft import REPO

ALIAS = "smollm2-135m-instruct"
DATA = REPO / "bench"


def tunelab_cmd() -> list[str]:
    """The `tunelab` command of the running interpreter's environment."""
    exe = Path(sys.executable).parent / "tunelab"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "tunelab"]


def tunelab_revision() -> str:
    """The commit of the tunelab the `tunelab` command runs (its source folder's checkout), '+dirty' with changes."""
    code = "import tunelab, pathlib; print(pathlib.Path(tunelab.__file__).parent)"
    src = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=src, capture_output=True, text=True).stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + ("+dirty" if git("status", "--porcelain", "--untracked-files=no", "--", ".") else "")


def resolve_model(model: Path | None) -> Path:
    """The HF folder of SmolLM2-135M-Instruct: the given one, else tunelab's converted cache of its alias."""
    if model is not None:
        return model.resolve()
    code = f"from tunelab.model.load import resolve; print(resolve({ALIAS!r}).path)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def ensure_adapter(adapter: Path, model: Path, seed: int = 0, std: float = 0.004) -> Path:
    """A LoRA adapter (PEFT format: r 8, alpha 16, every linear layer) unless `adapter` already holds one.

    Its B matrices are seeded random, not PEFT's zeros, so merging changes every projection (relative RMS change
    0.1-1.1% of each weight's spread, median 0.3%, measured): the benchmarks need a merge that does something, not a
    trained behaviour. Training one on 2 shared cores took most of an hour; the same seed gives the same adapter.
    """
    if (adapter / "adapter_config.json").is_file():
        return adapter
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    print(f"bench: writing a seeded random LoRA adapter (B ~ N(0, {std}), seed {seed}) to {adapter}", flush=True)
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                           target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                           "up_proj", "down_proj"]))
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, std)
    peft.save_pretrained(str(adapter))
    return adapter


def export_config(path: Path, model: Path, adapter: Path) -> Path:
    """tunelab's export config (LLaMA-Factory's keys): base, adapter, template; export keys on the command line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""\
        model_name_or_path: {model}
        adapter_name_or_path: {adapter}
        template: smollm2
        finetuning_type: lora
        """))
    return path


def run_export(config: Path, export_dir: Path, log: Path, quiet_wait: float, **keys: str) -> dict[str, Any]:
    """One `tunelab export CONFIG export_dir=... key=value...` process, measured (wall, peak RSS, other load)."""
    cmd = [*tunelab_cmd(), "export", str(config), f"export_dir={export_dir}", "overwrite_output_dir=true"]
    cmd += [f"{k}={v}" for k, v in keys.items()]
    return locked_launch(cmd, log, quiet_wait, retries=0)


def export_once(config: Path, export_dir: Path, **keys: str) -> Path:
    """`tunelab export` unless export_dir already holds its output; returns export_dir (for the checks).

    tunelab's own check against base + adapter is off here: the scripts that call this check more than it does.
    """
    done = any(export_dir.glob("*.gguf")) if keys.get("export_format") == "gguf" else (
        export_dir / "config.json").is_file()
    if not done:
        print(f"bench: tunelab export -> {export_dir} {keys}", flush=True)
        cmd = [*tunelab_cmd(), "export", str(config), f"export_dir={export_dir}", "overwrite_output_dir=true",
               "export_verify=false"]
        subprocess.run(cmd + [f"{k}={v}" for k, v in keys.items()], check=True, cwd=REPO)
    return export_dir


def gguf_file(folder: Path) -> Path:
    """The one .gguf file an export wrote into folder."""
    found = sorted(folder.rglob("*.gguf"))
    if len(found) != 1:
        raise SystemExit(f"bench: expected one .gguf file under {folder}, found {[str(f) for f in found]}")
    return found[0]


def run_worker(llama_python: Path, job: dict[str, Any], workdir: Path, name: str,
               no_extra_bufts: bool) -> dict[str, Any]:
    """Run llamacpp_worker.py on a job in llama-cpp-python's venv; the answer, or the crash (rc, log tail)."""
    job_file, answer_file, log = (workdir / f"{name}.job.json", workdir / f"{name}.answer.json",
                                  workdir / f"{name}.worker.log")
    job_file.write_text(json.dumps(job, ensure_ascii=False))
    answer_file.unlink(missing_ok=True)
    cmd = [str(llama_python), str(REPO / "bench" / "llamacpp_worker.py"), str(job_file), str(answer_file)]
    with log.open("w") as out:
        rc = subprocess.run(cmd + (["--no-extra-bufts"] if no_extra_bufts else []), stdout=out,
                            stderr=subprocess.STDOUT).returncode
    if rc != 0 or not answer_file.is_file():
        return {"ok": False, "rc": rc, "log_tail": log.read_text(errors="replace")[-1500:]}
    return {"ok": True, **json.loads(answer_file.read_text())}


def worker_with_fallback(llama_python: Path, job: dict[str, Any], workdir: Path, name: str,
                         force_off: bool) -> dict[str, Any]:
    """run_worker with llama.cpp's extra CPU buffer types on; where that crashes, again with them off (recorded)."""
    first = None if force_off else run_worker(llama_python, job, workdir, name, no_extra_bufts=False)
    if first is not None and first["ok"]:
        return first
    if first is not None:
        print(f"bench: llama.cpp failed on {name} with extra buffer types on (rc {first['rc']}); "
              "again with them off", flush=True)
    second = run_worker(llama_python, job, workdir, name + "-nobufts", no_extra_bufts=True)
    second["crash_with_extra_bufts"] = None if first is None else {"rc": first["rc"], "log_tail": first["log_tail"]}
    return second


def read_gguf(path: Path) -> dict[str, Any]:
    """Metadata (key -> short value) and tensors (name -> type, shape) of a GGUF file, read with `gguf`."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    meta: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        if field.types and field.types[0] == gguf.GGUFValueType.ARRAY:
            # long arrays (vocabulary, merges) by length, first items and a digest of every item's bytes
            digest = hashlib.sha1(b"".join(field.parts[i].tobytes() for i in field.data)).hexdigest()[:12]
            meta[key] = f"list[{len(field.data)}] {repr(field.contents(slice(0, 3)))[:80]} sha1 {digest}"
            continue
        value = field.contents()
        meta[key] = value if isinstance(value, (int, float, bool)) else str(value)[:200]
    tensors = {t.name: {"type": t.tensor_type.name, "shape": [int(x) for x in t.shape]} for t in reader.tensors}
    return {"metadata": meta, "tensors": tensors, "reader_tensors": {t.name: t for t in reader.tensors}}


def compare_gguf(a: Path, b: Path) -> dict[str, Any]:
    """Differences between two GGUF files: tensor names, types, shapes, metadata keys and values, data."""
    import gguf
    import numpy as np

    ga, gb = read_gguf(a), read_gguf(b)
    ta, tb, ma, mb = ga["tensors"], gb["tensors"], ga["metadata"], gb["metadata"]
    common = sorted(set(ta) & set(tb))
    ra, rb = ga["reader_tensors"], gb["reader_tensors"]
    data_diff = {}
    for name in common:
        if ta[name] != tb[name]:
            continue
        x, y = np.asarray(ra[name].data), np.asarray(rb[name].data)
        if not np.array_equal(x.view(np.uint8), y.view(np.uint8)):
            xa = gguf.dequantize(x, ra[name].tensor_type).astype(np.float64)
            ya = gguf.dequantize(y, rb[name].tensor_type).astype(np.float64)
            data_diff[name] = float(np.abs(xa - ya).max())
    values = {k: [ma[k], mb[k]] for k in sorted(set(ma) & set(mb)) if ma[k] != mb[k]}
    return {
        "files": [str(a), str(b)], "sizes_bytes": [a.stat().st_size, b.stat().st_size],
        "tensors": [len(ta), len(tb)], "only_in_first": sorted(set(ta) - set(tb)),
        "only_in_second": sorted(set(tb) - set(ta)),
        "type_or_shape_differs": {n: [ta[n], tb[n]] for n in common if ta[n] != tb[n]},
        "tensors_bitwise_equal": len(common) - len(data_diff) - sum(ta[n] != tb[n] for n in common),
        "tensors_data_differ_max_abs": data_diff,
        "metadata_keys": [len(ma), len(mb)], "metadata_only_in_first": sorted(set(ma) - set(mb)),
        "metadata_only_in_second": sorted(set(mb) - set(ma)), "metadata_values_differ": values,
    }


def reference_nll(model_dir: Path, ids: list[int], chunk: int, gguf: Path | None = None) -> tuple[float, int]:
    """Next-token NLL sum and count of a transformers model (float32) over the same chunks as the worker's."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = {"gguf_file": str(gguf)} if gguf is not None else {}
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent if gguf else model_dir), dtype=torch.float32,
                                                 **kwargs).eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(ids) - 1, chunk):
            part = ids[start:start + chunk]
            if len(part) < 2:
                break
            logits = model(torch.tensor([part])).logits[0].double()
            target = torch.tensor(part[1:])
            total += float(torch.nn.functional.cross_entropy(logits[:-1], target, reduction="sum"))
            count += len(part) - 1
    return total, count
