"""The unsafe pickle guard: block code-running model files at load time, whatever
the loader, and scan files statically before they are loaded.

- ``globals_policy``: which (module, name) globals are known safe, known
  dangerous or unknown; name normalisation.
- ``runtime_guard``: the ``pickle.find_class`` audit hook and the loader wrappers
  that name the file and scan it first; the ``PickleGuard`` guardrail.
- ``containers``: finding every pickle stream inside a file (raw, compressed,
  zip, torch, joblib, numpy).
- ``opcodes``: reading one pickle stream's globals with fickling's parser.
- ``scan``: ``scan_file(path) -> FileScan``.
- ``verdicts``: the result types shared by all of them.
"""
