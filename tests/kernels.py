"""The kernels an AVX2-only CPU (an AMD EPYC, say) takes, forced on a CPU with AVX-512.

Set in a child process's environment: OpenBLAS's Haswell kernels (what it picks on Zen),
numpy without its AVX-512 loops, oneDNN (TensorFlow's and OpenVINO's) capped at AVX2.
XNNPACK (LiteRT) has no such switch. .ci/run sets the same for its second pass over the
numerics-sensitive tests; bench/stage_night.py --force_avx2 and bench/cross_cpu.py use it.
"""

import os

AVX2_ENV = {
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL "
                                "AVX512_SPR",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def onednn_capped_below_avx512() -> bool:
  """Whether this process's oneDNN is capped below AVX-512 (the AVX2 kernels forced)."""
  cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
  return cap.startswith(("SSE", "AVX2", "AVX_")) or cap == "AVX"
