"""Review actions: a person looks at what a guardrail found and decides.

Mark a personal-data finding as a false positive or as accepted, allow a pickle
global that was warned about or blocked, justify a dataset read. Each action
needs a reason and is published as an event (so it lands in the audit log with
who did it), takes effect in the session at once, and can be made permanent in
the policy file, after the exact change was shown.

:mod:`.actions` is the one implementation; ``%mlsecops review/allow/justify``
(:mod:`.commands`) and the dashboard are front ends over it. This package
imports nothing heavy: the personal-data report imports :mod:`.column_reviews`.
"""
