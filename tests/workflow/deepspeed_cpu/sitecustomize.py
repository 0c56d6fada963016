"""Test-only device detection for DeepSpeed on the CPU (imported at start-up via PYTHONPATH).

Active only with ``RLCAUSALITY_TEST_DEEPSPEED_CPU=1``. It changes what the processes believe
about their device, nothing else:

* ``rlcausality.launch.accelerator_present`` answers True, so the code under test hands the
  trainer its DeepSpeed config and ``use_cpu=False``, as it would on a GPU;
* accelerate's backend detection, which knows no CPU DeepSpeed, reports the gloo backend for a
  process started by torchrun (LOCAL_RANK set), as it does for CPU DDP.

DeepSpeed itself selects its CPU accelerator on a machine without CUDA. Precision stays fp32
(``launch.cuda_capability`` still finds no GPU).
"""

import os

if os.environ.get("RLCAUSALITY_TEST_DEEPSPEED_CPU") == "1":
    import torch
    from accelerate import state as _accelerate_state
    from accelerate.utils import DistributedType

    from rlcausality import launch as _launch

    _launch.accelerator_present = lambda: True
    _prepare_backend = _accelerate_state.PartialState._prepare_backend

    def _cpu_deepspeed_backend(self, cpu=False, sagemaker_dp=False, backend=None):
        local_rank = int(os.environ.get("LOCAL_RANK", -1))
        if not cpu and not torch.cuda.is_available() and local_rank != -1:
            return "gloo", DistributedType.MULTI_CPU
        return _prepare_backend(self, cpu, sagemaker_dp, backend)

    _accelerate_state.PartialState._prepare_backend = _cpu_deepspeed_backend
