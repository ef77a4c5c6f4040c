"""Trust: what may be unpickled, who signed a model, and whether a load may go on.

- :mod:`~modelyard.trust.scan`: an opcode-level pickle scanner (stack and memo
  simulated) that lists every global a pickle would import, or refuses it.
- :mod:`~modelyard.trust.allowlist` and :mod:`~modelyard.trust.policy`: the
  allow-list (data, versioned) and the policy a load runs under.
- :mod:`~modelyard.trust.keys`, :mod:`~modelyard.trust.dsse`,
  :mod:`~modelyard.trust.signing`: keys, DSSE envelopes and signatures over a
  model's content manifest.
"""
