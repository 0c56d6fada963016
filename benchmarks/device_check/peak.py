"""Run ``python -m MODULE ARGS...`` (or under torchrun: ``torchrun ... peak.py MODULE ARGS``) and
record, per rank, its wall time, exit status and peak GPU memory into $RLC_PEAK_DIR/STEP.rankN.json.

  python peak.py STEP MODULE [ARGS...]
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
from pathlib import Path


def main() -> None:
    step, module, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    rank = os.environ.get("RANK", "0")
    out = Path(os.environ.get("RLC_PEAK_DIR", "/tmp")) / f"{step}.rank{rank}.json"
    record = {"step": step, "module": module, "rank": rank, "argv": args}
    start = time.perf_counter()
    code = 0
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException as error:  # recorded, then re-raised for the log
        record["error"] = f"{type(error).__name__}: {error}"[:2000]
        code = 1
        raise
    finally:
        record["exit"] = code
        record["wall_s"] = round(time.perf_counter() - start, 2)
        try:
            import torch

            if torch.cuda.is_available():
                record["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
                record["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 3)
        except Exception as error:
            record["peak_error"] = repr(error)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record), "utf-8")
    sys.exit(code)


if __name__ == "__main__":
    main()
