"""A corpus of malicious and benign model files, generated on demand.

``malicious_cases(directory, canary)`` writes one file per evasion technique from
the public record (advisories of picklescan and fickling, ModelAudit's bypass
research, nullifAI, "The Art of Hide and Seek"); every payload only creates the
canary file. ``benign_cases(directory)`` writes real artefacts of numpy, pandas,
scikit-learn, joblib, torch, dill, cloudpickle and safetensors, each with the
object it must load back to.

The tests (``tests/test_pickle_corpus.py``) load every file through its natural
loader in a real IPython shell with the guardrails on; the benchmark
(``tests/benchmarks/bench_pickle_scanners.py``) runs other scanners on the same files.
"""

from .benign import benign_cases
from .cases import LOADED, BenignCase, MaliciousCase
from .malicious import malicious_cases

__all__ = ["LOADED", "BenignCase", "MaliciousCase", "benign_cases", "malicious_cases"]
