"""Launching a study's sweeps: the options (launch), Hydra's expansion of a sweep into jobs and the committed records
it must match (sweeps), a spec's experiments then its page (reproduce), every paper-scale job in miniature (smoke)."""
